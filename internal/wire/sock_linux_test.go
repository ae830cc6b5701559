package wire_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpgo/mp/internal/wire"
)

// textCodec carries errors as their messages.
type textCodec struct{}

func (textCodec) EncodeError(err error) []byte { return []byte(err.Error()) }
func (textCodec) DecodeError(b []byte) error   { return errors.New(string(b)) }

// sockPair returns two connections on the ends of a socket pair, both
// SockStreams, given handlers by setup before they serve.
func sockPair(t *testing.T, setup func(a, b *wire.Conn)) (a, b *wire.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	sa, err := wire.ParentEnd(fds[0], "a")
	require.NoError(t, err)
	sb, err := wire.ParentEnd(fds[1], "b")
	require.NoError(t, err)
	a, b = wire.NewConn(sa, 0, textCodec{}), wire.NewConn(sb, 0, textCodec{})
	if setup != nil {
		setup(a, b)
	}
	a.Serve()
	b.Serve()
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// TestDirectCallsConcurrent makes calls from many goroutines at once, so
// that the caller that reads directly also reads the replies of others,
// and the peer's notifications: every call gets its own reply, and every
// notification its handler.
func TestDirectCallsConcurrent(t *testing.T) {
	var notes atomic.Int64
	a, _ := sockPair(t, func(a, b *wire.Conn) {
		a.Handle("note", func(req *wire.Request) { notes.Add(1) })
		b.Handle("echo", func(req *wire.Request) {
			// A notification goes out before each reply.
			_ = req.Conn.Notify("note", wire.Message{})
			req.ReplyNow(req.Msg, nil)
		})
	})
	const goroutines, calls = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				want := fmt.Sprintf("%d-%d", g, i)
				got, err := a.Call(context.Background(), "echo", wire.Message{Raw: []byte(want)})
				if !assert.NoError(t, err) || !assert.Equal(t, want, string(got.Raw)) {
					return
				}
			}
		})
	}
	wg.Wait()
	// Each notification was written before its call's reply, and the
	// connection reads in order.
	assert.Equal(t, int64(goroutines*calls), notes.Load())
}

// TestDirectReadLargeReply gets replies larger than the socket holds,
// which arrive in pieces while the caller reads them itself.
func TestDirectReadLargeReply(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	a, _ := sockPair(t, func(a, b *wire.Conn) {
		b.Handle("big", func(req *wire.Request) { req.ReplyNow(wire.Message{Raw: big}, nil) })
	})
	for range 3 {
		got, err := a.Call(context.Background(), "big", wire.Message{})
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, got.Raw))
	}
}

// TestDirectReadCancel cancels a call whose reply never comes while its
// caller reads directly: the call returns the context's error, and the
// connection goes on serving, its reader goroutine reading again.
func TestDirectReadCancel(t *testing.T) {
	held := make(chan *wire.Request, 1)
	a, _ := sockPair(t, func(a, b *wire.Conn) {
		b.Handle("hold", func(req *wire.Request) { held <- req })
		b.Handle("echo", func(req *wire.Request) { req.ReplyNow(req.Msg, nil) })
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := a.Call(ctx, "hold", wire.Message{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	req := <-held
	// The late reply goes to nobody; the reader goroutine reads it.
	req.ReplyNow(wire.Message{Raw: []byte("late")}, nil)
	for i := range 20 {
		want := fmt.Sprint(i)
		got, err := a.Call(context.Background(), "echo", wire.Message{Raw: []byte(want)})
		require.NoError(t, err)
		require.Equal(t, want, string(got.Raw))
	}
}

// TestDirectReadPeerGone ends the peer while the caller reads directly:
// the call fails with ErrConnLost, and the connection reports its end.
func TestDirectReadPeerGone(t *testing.T) {
	a, _ := sockPair(t, func(a, b *wire.Conn) {
		b.Handle("die", func(req *wire.Request) { go req.Conn.Close() })
	})
	_, err := a.Call(context.Background(), "die", wire.Message{})
	require.ErrorIs(t, err, wire.ErrConnLost)
	select {
	case <-a.Broken:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end")
	}
}

// TestDirectReadClose closes the connection while a caller reads
// directly: the call fails with ErrConnLost and Close returns.
func TestDirectReadClose(t *testing.T) {
	held := make(chan struct{})
	a, _ := sockPair(t, func(a, b *wire.Conn) {
		b.Handle("hold", func(req *wire.Request) { close(held) })
	})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "hold", wire.Message{})
		errc <- err
	}()
	<-held
	a.Close()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, wire.ErrConnLost)
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not end with the connection")
	}
}
