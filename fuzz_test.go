//go:build unix

package mp

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fuzz targets in this file feed arbitrary bytes to every decoder that
// reads what a child sent: frame dispatch, the error decoder, the result
// and batch decoders and the streamed gob decoder (the queue decoders are
// FuzzQueueMessages, the framing itself is internal/wire's FuzzReadFrame).
// A child is another program, possibly broken, so each decoder must fail
// with an error and never panic, hang or accept bytes it overran. CI runs
// each target for a few seconds; README says how to run them for longer.

// byteStream is a stream that reads a fixed input and discards what is
// written to it, so that a conn can be driven by fuzzed bytes.
type byteStream struct{ r *bytes.Reader }

func (s *byteStream) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *byteStream) Write(p []byte) (int, error)      { return len(p), nil }
func (s *byteStream) Close() error                     { return nil }
func (s *byteStream) SetReadDeadline(time.Time) error  { return nil }
func (s *byteStream) SetWriteDeadline(time.Time) error { return nil }

// FuzzConnFrames runs a connection's reader over arbitrary bytes, with a
// call pending and a service registered, as the parent's end of a child's
// connection is: every frame is dispatched, and the connection ends with
// an error rather than a panic or a hang.
func FuzzConnFrames(f *testing.F) {
	req := wire.AppendService("echo", []byte("h"))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindRequest, ID: 7, Header: req, Raw: []byte("x")}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindNotify, Header: req}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindReply, ID: 1, Header: []byte("ok")}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindReplyErr, ID: 1, Header: encodeError(ErrClosed)}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindCancel, ID: 7}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindGobType, ID: 3, Raw: []byte{1, 2, 3}}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: 99}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := wire.NewConn(&byteStream{r: bytes.NewReader(data)}, 1<<16, errorCodec{})
		c.Handle("echo", wire.Concurrent(func(_ context.Context, m wire.Message) (wire.Message, error) {
			return wire.Message{Header: m.Header, Raw: m.Raw}, nil
		}))
		cl, err := c.Start("pending", wire.Message{Header: []byte("q")})
		require.NoError(t, err)
		c.Serve()
		select {
		case <-c.Broken:
		case <-time.After(10 * time.Second):
			t.Fatal("the reader did not end at the end of its input")
		}
		c.Close()
		require.ErrorIs(t, c.Err(), wire.ErrConnLost)
		// The pending call was either answered by a reply frame or failed
		// with the connection; it never stays pending.
		select {
		case <-cl.Done:
		default:
			t.Fatal("a pending call outlived its connection")
		}
	})
}

// FuzzDecodeError checks that every byte string decodes to some error:
// a child's error reply is never lost, and never crashes the parent.
func FuzzDecodeError(f *testing.F) {
	f.Add(encodeError(ErrClosed))
	f.Add(encodeError(&PanicError{Value: "boom", Stack: []byte("stack")}))
	f.Add(encodeError(io.EOF))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := decodeError(b)
		require.Error(t, err)
		assert.NotPanics(t, func() { _ = err.Error() })
	})
}

// fuzzItem is a gob-encoded result type with nested parts.
type fuzzItem struct {
	N    int
	S    string
	B    []byte
	Tags map[string][]float64
	Next *fuzzItem
}

// decodeRoundTrip decodes b as a T and, when that succeeds, checks that
// the value encodes again and decodes to a value that encodes the same.
func decodeRoundTrip[T any](t *testing.T, b []byte) {
	c := codecFor[T]()
	v, err := c.decode(b)
	if err != nil {
		return
	}
	again, err := c.encode(v)
	require.NoError(t, err, "a decoded %T encodes again", v)
	back, err := c.decode(again)
	require.NoError(t, err)
	if c.kind == codecGob {
		// Gob writes map entries in no fixed order, and NaN is unequal
		// to itself, so for gob that the value decodes again is the test.
		return
	}
	third, err := c.encode(back)
	require.NoError(t, err)
	require.True(t, bytes.Equal(again, third), "%T round trip: %x != %x", v, again, third)
}

// FuzzDecodeResult feeds arbitrary bytes to the decoders of a task's
// result, one for each encoding kind.
func FuzzDecodeResult(f *testing.F) {
	for _, v := range []any{42, "s", []byte("raw"), 1.5, true, uint(7), fuzzItem{N: 1, S: "x", Next: &fuzzItem{}},
		fuzzItem{N: 2, B: make([]byte, splitMin)}} { // the last one's B travels beside its gob
		var b []byte
		var err error
		switch v := v.(type) {
		case int:
			b, err = codecFor[int]().encode(v)
		case string:
			b, err = codecFor[string]().encode(v)
		case []byte:
			b, err = codecFor[[]byte]().encode(v)
		case float64:
			b, err = codecFor[float64]().encode(v)
		case bool:
			b, err = codecFor[bool]().encode(v)
		case uint:
			b, err = codecFor[uint]().encode(v)
		case fuzzItem:
			b, err = codecFor[fuzzItem]().encode(v)
		}
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeRoundTrip[int](t, b)
		decodeRoundTrip[int8](t, b)
		decodeRoundTrip[uint](t, b)
		decodeRoundTrip[float64](t, b)
		decodeRoundTrip[bool](t, b)
		decodeRoundTrip[string](t, b)
		decodeRoundTrip[[]byte](t, b)
		decodeRoundTrip[struct{}](t, b)
		decodeRoundTrip[fuzzItem](t, b)
		decodeRoundTrip[[]fuzzItem](t, b)
	})
}

// batchDecode decodes b as a batch of T, both ways the parent does: as a
// batch of unknown length and into a slice of a fixed length.
func batchDecode[T any](t *testing.T, b []byte, n int) {
	bc := newBatchCodec[T]()
	if vs, err := bc.decode(nil, b); err == nil {
		require.LessOrEqual(t, len(vs), max(len(b), 1), "a batch never claims more items than it has bytes")
	}
	_ = bc.decodeInto(nil, b, make([]T, n))
}

// FuzzDecodeBatch feeds arbitrary bytes to the batch decoders of the
// process pool's chunks, for each kind of item.
func FuzzDecodeBatch(f *testing.F) {
	for _, n := range []int{0, 1, 3} {
		ints := make([]int, n)
		strs := make([]string, n)
		items := make([]fuzzItem, n)
		for i := range n {
			ints[i], strs[i], items[i] = i*1000, "item", fuzzItem{N: i}
		}
		for _, enc := range []func() ([]byte, error){
			func() ([]byte, error) { return newBatchCodec[int]().encode(nil, nil, ints) },
			func() ([]byte, error) { return newBatchCodec[string]().encode(nil, nil, strs) },
			func() ([]byte, error) { return newBatchCodec[fuzzItem]().encode(nil, nil, items) },
		} {
			b, err := enc()
			require.NoError(f, err)
			f.Add(b, uint8(n))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		batchDecode[int](t, b, int(n))
		batchDecode[uint16](t, b, int(n))
		batchDecode[float32](t, b, int(n))
		batchDecode[bool](t, b, int(n))
		batchDecode[string](t, b, int(n))
		batchDecode[[]byte](t, b, int(n))
		batchDecode[fuzzItem](t, b, int(n))
	})
}
