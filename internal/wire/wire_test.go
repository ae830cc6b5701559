package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/mpgo/mp/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	frames := []wire.Frame{
		{Kind: 1, ID: 7},
		{Kind: 2, ID: 1 << 60, Header: []byte("mp.run"), Raw: []byte{1, 2, 3}},
		{Kind: 3, ID: 0, Raw: bytes.Repeat([]byte{9}, 3<<20)},
		{Kind: 4, ID: 5, Header: []byte("hdr"), Raw: bytes.Repeat([]byte{7}, 1<<20)},
		{Kind: 5, ID: 6, Header: bytes.Repeat([]byte{3}, 100), Raw: bytes.Repeat([]byte{8}, 40<<10)},
	}
	var b []byte
	for i := range frames {
		b = wire.AppendFrame(b, &frames[i])
	}
	r := wire.NewReader(bytes.NewReader(b), 0)
	for _, want := range frames {
		got, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, want.Kind, got.Kind)
		assert.Equal(t, want.ID, got.ID)
		assert.Equal(t, len(want.Header), len(got.Header))
		assert.True(t, bytes.Equal(want.Header, got.Header))
		assert.True(t, bytes.Equal(want.Raw, got.Raw))
	}
	_, err := r.ReadFrame()
	assert.ErrorIs(t, err, io.EOF)
}

func TestReaderRejects(t *testing.T) {
	valid := wire.AppendFrame(nil, &wire.Frame{Kind: 1, ID: 2, Header: []byte("hdr"), Raw: []byte("raw")})
	hugeClaim := binary.BigEndian.AppendUint32(nil, 1<<30)
	badHeader := bytes.Clone(valid)
	binary.BigEndian.PutUint32(badHeader[13:], 1000)
	big := wire.AppendFrame(nil, &wire.Frame{Kind: 1, ID: 2, Header: []byte("hdr"), Raw: make([]byte, 100<<10)})
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"oversized", valid, 10, wire.ErrTooLarge},
		{"claims a gigabyte", hugeClaim, 0, wire.ErrTooLarge},
		{"shorter than fixed fields", []byte{0, 0, 0, 3, 1, 2, 3}, 0, wire.ErrMalformed},
		{"header longer than body", badHeader, 0, wire.ErrMalformed},
		{"truncated", valid[:len(valid)-1], 0, io.ErrUnexpectedEOF},
		{"truncated in a large payload", big[:len(big)-1], 0, io.ErrUnexpectedEOF},
		{"truncated in the header of a large payload", big[:20], 0, io.ErrUnexpectedEOF},
		{"truncated large", binary.BigEndian.AppendUint32(nil, 5<<20), 0, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if tt.name == "truncated large" {
				in = append(bytes.Clone(in), make([]byte, 13+2<<20)...)
			}
			_, err := wire.NewReader(bytes.NewReader(in), tt.max).ReadFrame()
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

// slowWriter records how many writes it received.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func TestWriterConcurrentAndOrdered(t *testing.T) {
	cw := &countingWriter{}
	w := wire.NewWriter(cw)
	const senders, each = 8, 500
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				require.NoError(t, w.WriteFrame(&wire.Frame{Kind: wire.Kind(s), ID: uint64(i)}, i == each-1))
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close())
	next := make([]uint64, senders)
	r := wire.NewReader(&cw.buf, 0)
	for range senders * each {
		f, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, next[f.Kind], f.ID, "frames of one sender stay in order")
		next[f.Kind]++
	}
	assert.Less(t, cw.writes, senders*each, "queued frames are written together")
	assert.ErrorIs(t, w.WriteFrame(&wire.Frame{}, false), io.ErrClosedPipe)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

func TestWriterStickyError(t *testing.T) {
	w := wire.NewWriter(failWriter{})
	err := w.WriteFrame(&wire.Frame{Kind: 1}, true)
	require.ErrorContains(t, err, "broken")
	require.ErrorContains(t, w.WriteFrame(&wire.Frame{Kind: 1}, false), "broken")
	require.ErrorContains(t, w.Close(), "broken")
}

func TestWriterFail(t *testing.T) {
	w := wire.NewWriter(io.Discard)
	gone := errors.New("gone")
	w.Fail(gone)
	assert.ErrorIs(t, w.WriteFrame(&wire.Frame{}, false), gone)
	assert.ErrorIs(t, w.Close(), gone)
}

func FuzzReadFrame(f *testing.F) {
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: 1, ID: 1, Header: []byte("mp.run"), Raw: []byte("x")}))
	f.Add(wire.AppendFrame(nil, &wire.Frame{Kind: 2}))
	f.Add(append(wire.AppendFrame(nil, &wire.Frame{Kind: 3, ID: 9, Header: []byte{0}}), 0, 0, 0, 1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := wire.NewReader(bytes.NewReader(data), 1<<16)
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				return
			}
			again := wire.AppendFrame(nil, &fr)
			back, err := wire.NewReader(bytes.NewReader(again), 1<<16).ReadFrame()
			require.NoError(t, err)
			require.Equal(t, fr.Kind, back.Kind)
			require.Equal(t, fr.ID, back.ID)
			require.True(t, bytes.Equal(fr.Header, back.Header))
			require.True(t, bytes.Equal(fr.Raw, back.Raw))
		}
	})
}

func TestWriterLargePayloadsInOrder(t *testing.T) {
	cw := &countingWriter{}
	w := wire.NewWriter(cw)
	big := bytes.Repeat([]byte{7}, 200<<10)
	for i := range 20 {
		raw := []byte{byte(i)}
		if i%3 == 0 {
			raw = big
		}
		require.NoError(t, w.WriteFrame(&wire.Frame{Kind: 1, ID: uint64(i), Header: []byte("h"), Raw: raw}, false))
	}
	require.NoError(t, w.Close())
	r := wire.NewReader(&cw.buf, 0)
	for i := range 20 {
		f, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, uint64(i), f.ID)
		assert.Equal(t, "h", string(f.Header))
		if i%3 == 0 {
			assert.True(t, bytes.Equal(big, f.Raw))
		} else {
			assert.Equal(t, []byte{byte(i)}, f.Raw)
		}
	}
}

func TestWriterWriteLast(t *testing.T) {
	last := &wire.Frame{Kind: 4, ID: 9, Header: []byte("h"), Raw: []byte("last")}
	tests := []struct {
		name   string
		before []uint64 // IDs of frames queued with WriteFrame first
		writes int      // system calls expected, or 0 for any
	}{
		{name: "only frame, written inline", writes: 1},
		{name: "after queued frames", before: []uint64{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cw := &countingWriter{}
			w := wire.NewWriter(cw)
			for _, id := range tt.before {
				require.NoError(t, w.WriteFrame(&wire.Frame{Kind: 1, ID: id}, false))
			}
			require.NoError(t, w.WriteLast(last))
			if tt.writes != 0 {
				assert.Equal(t, tt.writes, cw.writes)
			}
			assert.ErrorIs(t, w.WriteFrame(&wire.Frame{}, false), io.ErrClosedPipe, "the Writer is closed")
			require.NoError(t, w.Close())
			r := wire.NewReader(&cw.buf, 0)
			for _, id := range tt.before {
				f, err := r.ReadFrame()
				require.NoError(t, err)
				assert.Equal(t, id, f.ID)
			}
			f, err := r.ReadFrame()
			require.NoError(t, err)
			assert.Equal(t, *last, f)
			_, err = r.ReadFrame()
			assert.ErrorIs(t, err, io.EOF, "nothing follows the last frame")
		})
	}
}

func TestWriterWriteLastError(t *testing.T) {
	w := wire.NewWriter(failWriter{})
	require.ErrorContains(t, w.WriteLast(&wire.Frame{Kind: 1}), "broken")
	require.ErrorContains(t, w.Close(), "broken")

	w = wire.NewWriter(io.Discard)
	gone := errors.New("gone")
	w.Fail(gone)
	assert.ErrorIs(t, w.WriteLast(&wire.Frame{Kind: 1}), gone)
}

func TestWriterCloseUnused(t *testing.T) {
	w := wire.NewWriter(failWriter{})
	require.NoError(t, w.Close(), "a Writer that never wrote has no error")
	assert.ErrorIs(t, w.WriteFrame(&wire.Frame{}, true), io.ErrClosedPipe)
}

// stingyWriter is a stream whose TryWrite takes a varying, often partial
// share of what it is given, and sometimes nothing, as a full socket does;
// Write takes everything.
type stingyWriter struct {
	countingWriter
	mu    sync.Mutex
	calls int
	tried int // bytes taken by TryWrite
}

func (s *stingyWriter) TryWrite(bufs [][]byte) (int, error) {
	s.mu.Lock()
	s.calls++
	share := []int{0, 1, 7, 100, 1 << 30}[s.calls%5]
	s.mu.Unlock()
	n := 0
	for _, b := range bufs {
		k := min(len(b), share-n)
		if k <= 0 {
			break
		}
		if _, err := s.Write(b[:k]); err != nil {
			return n, err
		}
		n += k
	}
	s.mu.Lock()
	s.tried += n
	s.mu.Unlock()
	return n, nil
}

// TestWriterTriesOnCallersGoroutine checks the writes made on the caller's
// goroutine: whatever share of a frame the stream takes at once, the rest
// follows through the writer goroutine, frames stay in order per sender,
// large payloads arrive whole, and a flush returns only once its frame is
// out.
func TestWriterTriesOnCallersGoroutine(t *testing.T) {
	sw := &stingyWriter{}
	w := wire.NewWriter(sw)
	big := bytes.Repeat([]byte{9}, 100<<10)
	const senders, each = 4, 300
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			sent := 0
			for i := range each {
				raw := []byte{byte(i)}
				if i%50 == 0 {
					raw = big
				}
				flush := i%7 == 0
				f := &wire.Frame{Kind: wire.Kind(s + 1), ID: uint64(i), Raw: raw}
				sent += f.Size()
				require.NoError(t, w.WriteFrame(f, flush))
				if flush {
					sw.countingWriter.mu.Lock()
					n := sw.buf.Len()
					sw.countingWriter.mu.Unlock()
					require.GreaterOrEqual(t, n, sent, "a flushed frame, and every frame before it, is out")
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close())
	next := make([]uint64, senders+1)
	r := wire.NewReader(&sw.buf, 0)
	for range senders * each {
		f, err := r.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, next[f.Kind], f.ID, "frames of one sender stay in order")
		if f.ID%50 == 0 {
			require.True(t, bytes.Equal(big, f.Raw), "a large payload arrives whole")
		} else {
			require.Equal(t, []byte{byte(f.ID)}, f.Raw)
		}
		next[f.Kind]++
	}
	_, err := r.ReadFrame()
	assert.ErrorIs(t, err, io.EOF, "nothing more was written")
	assert.Positive(t, sw.tried, "some frames went out on the callers' goroutines")
}

// TestWriterTryWriteError checks that a failed try is the Writer's sticky
// error, as a failed write is.
func TestWriterTryWriteError(t *testing.T) {
	w := wire.NewWriter(failTry{})
	require.ErrorContains(t, w.WriteFrame(&wire.Frame{Kind: 1}, false), "refused")
	require.ErrorContains(t, w.WriteFrame(&wire.Frame{Kind: 1}, true), "refused")
	require.ErrorContains(t, w.Close(), "refused")
}

type failTry struct{ failWriter }

func (failTry) TryWrite([][]byte) (int, error) { return 0, errors.New("refused") }

// breakAfterWrite takes every write whole, then has the connection break,
// as when the peer exits on reading the frame.
type breakAfterWrite struct {
	countingWriter
	w *wire.Writer
}

func (b *breakAfterWrite) TryWrite(bufs [][]byte) (int, error) {
	n := 0
	for _, p := range bufs {
		k, _ := b.Write(p)
		n += k
	}
	b.w.Fail(errors.New("peer gone"))
	return n, nil
}

// TestWriterErrorAfterFrameWritten checks that a frame written whole is
// reported written, though the connection broke right after: a caller
// told otherwise would send again what the peer already has.
func TestWriterErrorAfterFrameWritten(t *testing.T) {
	for _, flush := range []bool{false, true} {
		bw := &breakAfterWrite{}
		bw.w = wire.NewWriter(bw)
		require.NoError(t, bw.w.WriteFrame(&wire.Frame{Kind: 1, ID: 7}, flush), "flush %v", flush)
		require.ErrorContains(t, bw.w.WriteFrame(&wire.Frame{Kind: 1, ID: 8}, flush), "peer gone", "a later frame sees the break")
		f, err := wire.NewReader(&bw.buf, 0).ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, uint64(7), f.ID)
	}
}
