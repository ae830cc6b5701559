//go:build unix

package mp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// filePair returns the two ends of a socket pair, both pollable.
func filePair(t testing.TB) (wire.Stream, wire.Stream) {
	a, b, err := socketPair()
	require.NoError(t, err)
	setSockBuf(a)
	setSockBuf(b)
	fa, err := pollableEnd(a, "a")
	require.NoError(t, err)
	fb, err := pollableEnd(b, "b")
	require.NoError(t, err)
	return fa, fb
}

// connPair returns two serving connections joined by a socket pair; a is
// given handlers by setup before it serves.
func connPair(t *testing.T, setup func(a, b *wire.Conn)) (a, b *wire.Conn) {
	t.Helper()
	fa, fb := filePair(t)
	a, b = wire.NewConn(fa, 0, errorCodec{}), wire.NewConn(fb, 0, errorCodec{})
	if setup != nil {
		setup(a, b)
	}
	a.Serve()
	b.Serve()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestConnPipelinedCalls(t *testing.T) {
	a, b := connPair(t, func(a, _ *wire.Conn) {
		a.Handle("echo", wire.Concurrent(func(_ context.Context, m wire.Message) (wire.Message, error) {
			return wire.Message{Header: m.Header, Raw: append(m.Raw, '!')}, nil
		}))
	})
	_ = a
	const n = 500
	calls := make([]*wire.Call, n)
	for i := range calls {
		var err error
		calls[i], err = b.Start("echo", wire.Message{Header: []byte(fmt.Sprint(i)), Raw: []byte("x")})
		require.NoError(t, err)
	}
	for i, cl := range calls {
		m, err := cl.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), string(m.Header))
		assert.Equal(t, "x!", string(m.Raw))
	}
}

func TestConnBothDirectionsConcurrently(t *testing.T) {
	double := wire.Concurrent(func(_ context.Context, m wire.Message) (wire.Message, error) {
		return wire.Message{Raw: append(m.Raw, m.Raw...)}, nil
	})
	a, b := connPair(t, func(a, b *wire.Conn) { a.Handle("double", double); b.Handle("double", double) })
	var wg sync.WaitGroup
	for _, c := range []*wire.Conn{a, b} {
		for range 4 {
			wg.Go(func() {
				for range 100 {
					m, err := c.Call(t.Context(), "double", wire.Message{Raw: []byte("ab")})
					assert.NoError(t, err)
					assert.Equal(t, "abab", string(m.Raw))
				}
			})
		}
	}
	wg.Wait()
}

func TestConnErrorsAndUnknownService(t *testing.T) {
	_, b := connPair(t, func(a, _ *wire.Conn) {
		a.Handle("fail", wire.Concurrent(func(context.Context, wire.Message) (wire.Message, error) {
			return wire.Message{}, fmt.Errorf("wrapped: %w", ErrFull)
		}))
	})
	_, err := b.Call(t.Context(), "fail", wire.Message{})
	require.ErrorIs(t, err, ErrFull)
	_, err = b.Call(t.Context(), "nosuch", wire.Message{})
	require.ErrorContains(t, err, `no service "nosuch"`)
}

func TestConnCancel(t *testing.T) {
	entered := make(chan struct{})
	cause := make(chan error, 1)
	_, b := connPair(t, func(a, _ *wire.Conn) {
		a.Handle("block", wire.Concurrent(func(ctx context.Context, _ wire.Message) (wire.Message, error) {
			close(entered)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return wire.Message{}, ctx.Err()
		}))
	})
	ctx, cancel := context.WithCancel(t.Context())
	cl, err := b.Start("block", wire.Message{})
	require.NoError(t, err)
	<-entered
	cancel()
	_, err = cl.Wait(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, <-cause, wire.ErrCallerCancelled, "the handler's ctx is cancelled by the caller")
}

func TestConnNotify(t *testing.T) {
	got := make(chan string, 1)
	_, b := connPair(t, func(a, _ *wire.Conn) {
		a.Handle("note", func(req *wire.Request) {
			got <- string(req.Msg.Raw)
			req.Reply(wire.Message{}, nil)
		})
	})
	require.NoError(t, b.Notify("note", wire.Message{Raw: []byte("hi")}))
	assert.Equal(t, "hi", <-got)
}

// A notification's context is the connection's: it ends when the
// connection does, whether or not the handler replies.
func TestConnNotifyContextEndsWithConnection(t *testing.T) {
	fa, fb := filePair(t)
	a, b := wire.NewConn(fa, 0, errorCodec{}), wire.NewConn(fb, 0, errorCodec{})
	ctxs := make(chan context.Context, 1)
	a.Handle("note", func(req *wire.Request) { ctxs <- req.Ctx })
	a.Serve()
	b.Serve()
	require.NoError(t, b.Notify("note", wire.Message{Raw: []byte("hi")}))
	ctx := <-ctxs
	require.NoError(t, ctx.Err(), "alive while the connection is")
	b.Close()
	a.Close()
	<-ctx.Done()
	assert.ErrorIs(t, context.Cause(ctx), wire.ErrConnLost)
}

func TestConnBreakFailsPendingCalls(t *testing.T) {
	broke := make(chan error, 1)
	a, b := connPair(t, func(a, b *wire.Conn) {
		a.Handle("hang", func(*wire.Request) {})
		b.OnBreak = func(err error) { broke <- err }
	})
	cl, err := b.Start("hang", wire.Message{})
	require.NoError(t, err)
	a.Close()
	_, err = cl.Wait(t.Context())
	require.ErrorIs(t, err, wire.ErrConnLost)
	assert.ErrorIs(t, <-broke, io.EOF, "the owner learns why")
	_, err = b.Start("hang", wire.Message{})
	assert.ErrorIs(t, err, wire.ErrConnLost, "calls after the break fail at once")
	assert.True(t, errors.Is(b.Err(), wire.ErrConnLost))
}

func benchConn(b *testing.B) *wire.Conn {
	fa, fb := filePair(b)
	a, c := wire.NewConn(fa, 0, errorCodec{}), wire.NewConn(fb, 0, errorCodec{})
	a.Handle("echo", func(req *wire.Request) { req.Reply(req.Msg, nil) })
	a.Serve()
	c.Serve()
	b.Cleanup(func() { a.Close(); c.Close() })
	return c
}

// BenchmarkConnRoundTrip is one small call at a time: the latency floor of
// a request to a child.
func BenchmarkConnRoundTrip(b *testing.B) {
	c := benchConn(b)
	ctx := context.Background()
	m := wire.Message{Raw: []byte("12345678")}
	for b.Loop() {
		if _, err := c.Call(ctx, "echo", m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnPipelined keeps 256 small calls in flight, as a process
// pool or a queue does.
func BenchmarkConnPipelined(b *testing.B) {
	c := benchConn(b)
	ctx := context.Background()
	m := wire.Message{Raw: []byte("12345678")}
	const window = 256
	inflight := make(chan *wire.Call, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cl := range inflight {
			if _, err := cl.Wait(ctx); err != nil {
				b.Error(err)
			}
		}
	}()
	for b.Loop() {
		cl, err := c.Start("echo", m)
		if err != nil {
			b.Fatal(err)
		}
		inflight <- cl
	}
	close(inflight)
	<-done
}

type streamPoint struct {
	X, Y int
	Tags map[string][]float64
	Next *streamPoint
}

type withAny struct{ V any }

// echoTyped serves "echo-T": decode a T from the request, encode it back.
func echoTyped[T any](c *wire.Conn, name string) {
	codec := codecFor[T]()
	c.Handle(name, wire.Concurrent(func(_ context.Context, m wire.Message) (wire.Message, error) {
		v, err := codec.decodeOn(c, m.Raw)
		if err != nil {
			return wire.Message{}, err
		}
		raw, err := codec.encodeOn(c, v)
		return wire.Message{Raw: raw}, err
	}))
}

func callTyped[T any](t *testing.T, c *wire.Conn, name string, v T) T {
	codec := codecFor[T]()
	raw, err := codec.encodeOn(c, v)
	require.NoError(t, err)
	m, err := c.Call(t.Context(), name, wire.Message{Raw: raw})
	require.NoError(t, err)
	out, err := codec.decodeOn(c, m.Raw)
	require.NoError(t, err)
	return out
}

func TestGobStreamsOnConn(t *testing.T) {
	_, b := connPair(t, func(a, _ *wire.Conn) {
		echoTyped[streamPoint](a, "point")
		echoTyped[*streamPoint](a, "ptr")
		echoTyped[withAny](a, "any")
		echoTyped[[]string](a, "strings")
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				p := streamPoint{X: g, Y: i, Tags: map[string][]float64{"k": {float64(i)}}, Next: &streamPoint{X: -1}}
				assert.Equal(t, p, callTyped(t, b, "point", p))
				assert.Equal(t, &p, callTyped(t, b, "ptr", &p))
				assert.Equal(t, withAny{V: i}, callTyped(t, b, "any", withAny{V: i}))
				assert.Equal(t, []string{"a", fmt.Sprint(i)}, callTyped(t, b, "strings", []string{"a", fmt.Sprint(i)}))
			}
		})
	}
	wg.Wait()

	raw, err := codecFor[streamPoint]().encodeOn(b, streamPoint{X: 1})
	require.NoError(t, err)
	assert.Less(t, len(raw), 20, "a streamed value carries no type description")
	raw, err = codecFor[withAny]().encodeOn(b, withAny{V: 1})
	require.NoError(t, err)
	assert.Equal(t, wire.GobFresh, raw[0], "a type with an interface inside uses a fresh stream")
}

func TestGobStreamUndescribedType(t *testing.T) {
	_, b := connPair(t, nil)
	_, err := codecFor[streamPoint]().decodeOn(b, []byte{wire.GobStreamed, 99, 1, 2})
	require.ErrorIs(t, err, wire.ErrMalformed)
	_, err = codecFor[streamPoint]().decodeOn(nil, []byte{wire.GobStreamed, 1})
	require.Error(t, err, "a streamed value needs its connection")
}

// BenchmarkCodecStreamed is BenchmarkCodec/struct on a connection, where
// the type is described once: encode and decode of one small struct.
func BenchmarkCodecStreamed(b *testing.B) {
	type point struct{ X, Y int }
	c := benchConn(b)
	codec := codecFor[point]()
	raw, err := codec.encodeOn(c, point{})
	if err != nil {
		b.Fatal(err)
	}
	// Play the peer: take the description as the reader would.
	gt := wire.StreamType(reflect.TypeFor[point]())
	c.LearnGob(gt)
	_ = raw
	for b.Loop() {
		raw, err := codec.encodeOn(c, point{1, 2})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := codec.decodeOn(c, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConnRefusesOversizedMessages(t *testing.T) {
	fa, fb := filePair(t)
	a, b := wire.NewConn(fa, 1024, errorCodec{}), wire.NewConn(fb, 1024, errorCodec{})
	a.Handle("big", wire.Concurrent(func(context.Context, wire.Message) (wire.Message, error) {
		return wire.Message{Raw: make([]byte, 2048)}, nil
	}))
	a.Serve()
	b.Serve()
	t.Cleanup(func() { a.Close(); b.Close() })
	_, err := b.Start("big", wire.Message{Raw: make([]byte, 2048)})
	require.ErrorContains(t, err, "exceeds the 1024-byte limit")
	_, err = b.Call(t.Context(), "big", wire.Message{})
	require.ErrorContains(t, err, "exceeds the 1024-byte limit", "the reply is replaced by an error")
	assert.NoError(t, b.Err(), "the connection survives")
}

// BenchmarkConnLargeMessages streams 1 MiB one-way messages, the shape of
// a queue carrying big []byte items; compare with BenchmarkSocketpairRaw.
func BenchmarkConnLargeMessages(b *testing.B) {
	fa, fb := filePair(b)
	a, c := wire.NewConn(fa, 0, errorCodec{}), wire.NewConn(fb, 0, errorCodec{})
	var got sync.WaitGroup
	a.Handle("sink", func(req *wire.Request) { got.Done() })
	a.Serve()
	c.Serve()
	b.Cleanup(func() { a.Close(); c.Close() })
	payload := make([]byte, 1<<20)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		got.Add(1)
		if err := c.Notify("sink", wire.Message{Raw: payload}); err != nil {
			b.Fatal(err)
		}
	}
	got.Wait()
}

// BenchmarkSocketpairRaw is the bandwidth of the socket itself, 1 MiB
// writes read into a reused buffer.
func BenchmarkSocketpairRaw(b *testing.B) {
	fa, fb := filePair(b)
	defer fa.Close()
	defer fb.Close()
	payload := make([]byte, 1<<20)
	done := make(chan struct{})
	total := 0
	b.SetBytes(int64(len(payload)))
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		for {
			n, err := fa.Read(buf)
			total += n
			if err != nil {
				return
			}
		}
	}()
	for b.Loop() {
		if _, err := fb.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	fb.Close()
	<-done
}

// BenchmarkSocketpairFreshSlice is the floor of any design that hands the
// receiver a []byte it owns: as BenchmarkSocketpairRaw, but every 1 MiB
// message is read in full into a newly allocated slice, which the garbage
// collector then reclaims.
func BenchmarkSocketpairFreshSlice(b *testing.B) {
	fa, fb := filePair(b)
	defer fa.Close()
	defer fb.Close()
	payload := make([]byte, 1<<20)
	done := make(chan struct{})
	b.SetBytes(int64(len(payload)))
	go func() {
		defer close(done)
		for {
			buf := make([]byte, len(payload))
			if _, err := io.ReadFull(fa, buf); err != nil {
				return
			}
			sink = buf
		}
	}()
	for b.Loop() {
		if _, err := fb.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	fb.Close()
	<-done
}

// sink keeps the compiler from proving a benchmark's slice dead.
var sink []byte

// TestChildStream covers a child's end of its connection: plain blocking
// system calls at first, then the poller, whose deadlines work, and EOF
// when the parent closes its end.
func TestChildStream(t *testing.T) {
	a, b, err := socketPair()
	require.NoError(t, err)
	parent, err := pollableEnd(a, "parent")
	require.NoError(t, err)
	defer parent.Close()
	s := &childStream{fd: b}

	_, err = s.Write([]byte("hello"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(parent, buf, 5)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))
	_, err = parent.Write([]byte("run"))
	require.NoError(t, err)
	n, err = s.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "run", string(buf[:n]))
	assert.Nil(t, s.f.Load(), "still plain system calls")

	// A deadline needs the poller, so setting one moves the stream there.
	require.NoError(t, s.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	require.NotNil(t, s.f.Load())
	_, err = s.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, s.SetReadDeadline(time.Time{}))
	_, err = s.Write([]byte("reply"))
	require.NoError(t, err)
	n, err = io.ReadAtLeast(parent, buf, 5)
	require.NoError(t, err)
	assert.Equal(t, "reply", string(buf[:n]))

	require.NoError(t, parent.Close())
	_, err = s.Read(buf)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, s.Close())
}

// TestChildStreamEOFBeforePoller checks that a plain read reports the
// parent's end closing as EOF.
func TestChildStreamEOFBeforePoller(t *testing.T) {
	a, b, err := socketPair()
	require.NoError(t, err)
	s := &childStream{fd: b}
	require.NoError(t, syscall.Close(a))
	_, err = s.Read(make([]byte, 4))
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, s.Close())
}

// recordHook records the reply it is told of, and whether Done was
// still open then.
type recordHook struct {
	got      wire.Message
	openDone bool
	calls    int
}

func (h *recordHook) OnReply(cl *wire.Call) {
	h.calls++
	h.got = cl.Reply
	h.openDone = !wire.IsClosed(cl.Done)
}

// TestConnReplyHook checks that a call's hook hears its reply before Done
// closes, and is not called when the connection ends first.
func TestConnReplyHook(t *testing.T) {
	hold := make(chan struct{})
	_, b := connPair(t, func(a, _ *wire.Conn) {
		a.Handle("echo", func(req *wire.Request) { req.Reply(req.Msg, nil) })
		a.Handle("hold", wire.Concurrent(func(ctx context.Context, m wire.Message) (wire.Message, error) {
			<-hold
			return m, nil
		}))
	})
	h := &recordHook{}
	cl, err := b.StartHooked("echo", wire.Message{Raw: []byte("hi")}, h, false)
	require.NoError(t, err)
	<-cl.Done
	assert.Equal(t, 1, h.calls)
	assert.True(t, h.openDone, "the hook runs before Done closes")
	assert.Equal(t, "hi", string(h.got.Raw))

	lost := &recordHook{}
	cl, err = b.StartHooked("hold", wire.Message{}, lost, true)
	require.NoError(t, err)
	b.Fail(errors.New("gone"))
	close(hold)
	<-cl.Done
	require.ErrorIs(t, cl.Err, wire.ErrConnLost)
	assert.Zero(t, lost.calls, "no hook when the connection ends before the reply")
}
