//go:build unix

package mp_test

import (
	"context"
	"io"
	"testing"
	"testing/synctest"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoDouble receives ints on its end and sends each back doubled, until
// the other end closes; it returns how many it echoed.
func echoDouble(ctx context.Context, end *mp.PipeEnd[int]) (int, error) {
	n := 0
	for {
		v, err := end.Recv(ctx)
		if err == io.EOF {
			end.Close()
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := end.Send(2 * v); err != nil {
			return n, err
		}
		n++
	}
}

func init() { mp.Register(echoDouble) }

func TestPipeLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		a, b := mp.Pipe[string]()
		done, cancel := context.WithCancel(ctx)
		cancel()
		assert.False(t, b.Poll(done), "nothing sent yet")
		require.NoError(t, a.Send("hello"))
		assert.True(t, b.Poll(done))
		v, err := b.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, "hello", v)
		require.NoError(t, b.Send("back"))
		v, err = a.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, "back", v)

		require.NoError(t, a.Send("last"))
		a.Close()
		v, err = b.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, "last", v, "items sent before Close are still received")
		_, err = b.Recv(ctx)
		assert.ErrorIs(t, err, io.EOF)
		assert.True(t, b.Poll(done), "Recv would return io.EOF at once")
		assert.ErrorIs(t, b.Send("x"), mp.ErrClosed)
		_, err = a.Recv(ctx)
		assert.ErrorIs(t, err, mp.ErrClosed, "an end's own Close is not EOF")
	})
}

func TestPipeChild(t *testing.T) {
	ctx := t.Context()
	a, b := mp.Pipe[int]()
	p := startProc(t, echoDouble, b)
	for i := 1; i <= 3; i++ {
		require.NoError(t, a.Send(i))
	}
	for i := 1; i <= 3; i++ {
		require.True(t, a.Poll(ctx))
		v, err := a.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2*i, v)
	}
	a.Close()
	require.NoError(t, p.Join(ctx))
	n, err := p.Result()
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}
