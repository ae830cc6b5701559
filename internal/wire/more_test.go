package wire_test

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFrameMore writes frames whose payload comes in pieces, small and
// large, through a Writer and AppendFrame: the reader gets the pieces
// joined in Raw.
func TestFrameMore(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 1<<20)
	frames := []wire.Frame{
		{Kind: 1, ID: 1, Header: []byte("h"), Raw: []byte("head"), More: [][]byte{big}},
		{Kind: 2, ID: 2, Raw: []byte("a"), More: [][]byte{[]byte("b"), nil, []byte("c")}},
		{Kind: 3, ID: 3, Raw: nil, More: [][]byte{big[:70<<10], []byte("tail"), big[:100<<10]}},
		{Kind: 4, ID: 4, Raw: big[:64<<10-1], More: [][]byte{[]byte("x")}},
	}
	joined := func(f wire.Frame) []byte {
		return bytes.Join(append([][]byte{f.Raw}, f.More...), nil)
	}
	a, b := net.Pipe()
	w := wire.NewWriter(a)
	done := make(chan error, 1)
	go func() {
		for i := range frames {
			if err := w.WriteFrame(&frames[i], false); err != nil {
				done <- err
				return
			}
		}
		done <- w.Close()
	}()
	r := wire.NewReader(b, 0)
	for _, want := range frames {
		got, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, want.ID, got.ID)
		assert.True(t, bytes.Equal(want.Header, got.Header))
		assert.True(t, bytes.Equal(joined(want), got.Raw), "frame %d", want.ID)
		assert.Equal(t, want.Size(), 4+13+len(got.Header)+len(got.Raw))
	}
	require.NoError(t, <-done)
	a.Close()
	_, err := r.ReadFrame()
	assert.ErrorIs(t, err, io.EOF)

	// AppendFrame lays out the same bytes.
	r = wire.NewReader(bytes.NewReader(wire.AppendFrame(nil, &frames[1])), 0)
	got, err := r.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, []byte("abc"), got.Raw)
}
