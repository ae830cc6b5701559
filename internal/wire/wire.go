// Package wire is the frame format that mp speaks over the socket between a
// parent and each of its child processes.
//
// A frame is
//
//	[u32 length][u8 kind][u64 id][u32 header length][header][raw]
//
// where length counts every byte after itself, all integers are big-endian,
// the header carries small encoded metadata and raw carries the payload
// bytes as they are (a []byte argument travels there without a gob copy).
// One frame may carry many items: the header layout belongs to the service
// that sends it, so a queue can pack a batch into a single frame.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Kind says what a frame is for; package mp gives the values their meaning.
type Kind uint8

// Frame is one message on the wire.
type Frame struct {
	Kind   Kind
	ID     uint64
	Header []byte
	Raw    []byte
	// More holds raw bytes that follow Raw on the wire, so that a payload
	// in several pieces is sent without joining them first; the reader
	// receives them as part of Raw.
	More [][]byte
}

const (
	// prefixLen is the length of the u32 length field.
	prefixLen = 4
	// fixedLen is the part of a frame after the length field that every
	// frame has: kind, id and header length.
	fixedLen = 1 + 8 + 4

	// DefaultMaxFrame is the largest frame a Reader accepts unless told
	// otherwise.
	DefaultMaxFrame = 64 << 20

	// directAlloc is the largest body a Reader allocates in one piece
	// before it has seen the bytes: a peer that claims a larger frame and
	// then sends little costs little.
	directAlloc = 4 << 20
)

// ErrTooLarge is wrapped by the error for a frame longer than the limit.
var ErrTooLarge = errors.New("wire: frame too large")

// ErrMalformed is wrapped by the error for a frame whose fields contradict
// its length.
var ErrMalformed = errors.New("wire: malformed frame")

// Size returns the number of bytes f takes on the wire.
func (f *Frame) Size() int { return prefixLen + fixedLen + len(f.Header) + f.rawLen() }

// rawLen is the length of f's raw bytes, More included.
func (f *Frame) rawLen() int {
	n := len(f.Raw)
	for _, m := range f.More {
		n += len(m)
	}
	return n
}

// AppendFrame appends the encoding of f to b.
func AppendFrame(b []byte, f *Frame) []byte {
	b = append(appendHead(b, f), f.Raw...)
	for _, m := range f.More {
		b = append(b, m...)
	}
	return b
}

// appendHead appends the encoding of f up to its raw bytes.
func appendHead(b []byte, f *Frame) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(fixedLen+len(f.Header)+f.rawLen()))
	b = append(b, byte(f.Kind))
	b = binary.BigEndian.AppendUint64(b, f.ID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Header)))
	return append(b, f.Header...)
}

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max int
	pre [prefixLen + fixedLen]byte
}

// NewReader returns a Reader on r that rejects frames longer than max
// bytes (DefaultMaxFrame when max <= 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ReadFrame reads the next frame. The frame's slices are freshly
// allocated and belong to the caller. At a clean end of stream it returns
// io.EOF; a stream that ends inside a frame gives io.ErrUnexpectedEOF; a
// frame over the limit or with inconsistent lengths gives an error wrapping
// ErrTooLarge or ErrMalformed, after which the stream is out of step and
// must be abandoned.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.pre[:prefixLen]); err != nil {
		return Frame{}, err
	}
	n := int64(binary.BigEndian.Uint32(r.pre[:prefixLen]))
	if n > int64(r.max) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, r.max)
	}
	if n < fixedLen {
		return Frame{}, fmt.Errorf("%w: length %d shorter than the fixed fields", ErrMalformed, n)
	}
	if _, err := io.ReadFull(r.r, r.pre[prefixLen:]); err != nil {
		return Frame{}, unexpected(err)
	}
	f := Frame{Kind: Kind(r.pre[prefixLen]), ID: binary.BigEndian.Uint64(r.pre[prefixLen+1:])}
	hlen := int64(binary.BigEndian.Uint32(r.pre[prefixLen+9:]))
	body := n - fixedLen
	if hlen > body {
		return Frame{}, fmt.Errorf("%w: header length %d exceeds body length %d", ErrMalformed, hlen, body)
	}
	if body-hlen >= separateRaw {
		// A large payload gets an allocation of its own, of exactly its
		// size, which is what the caller keeps (a []byte item is handed
		// on as it is): no header in front of it that would make the
		// runtime round a 1 MiB item up to 1 MiB and a page, and leave
		// the header alive for as long as the item.
		var err error
		if f.Header, err = r.readBody(int(hlen)); err != nil {
			return Frame{}, err
		}
		if f.Raw, err = r.readBody(int(body - hlen)); err != nil {
			return Frame{}, err
		}
		return f, nil
	}
	buf, err := r.readBody(int(body))
	if err != nil {
		return Frame{}, err
	}
	f.Header = buf[:hlen:hlen]
	if body > hlen {
		f.Raw = buf[hlen:]
	}
	return f, nil
}

// separateRaw is the payload size from which a Reader allocates the raw
// bytes apart from the header.
const separateRaw = 32 << 10

// readBody reads exactly n bytes, growing the buffer as bytes arrive
// rather than trusting the claimed length up front.
func (r *Reader) readBody(n int) ([]byte, error) {
	if n <= directAlloc {
		buf := allocRaw(n)
		if _, err := io.ReadFull(r.r, buf); err != nil {
			return nil, unexpected(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, directAlloc)
	for len(buf) < n {
		chunk := min(n-len(buf), max(cap(buf)-len(buf), directAlloc))
		if cap(buf)-len(buf) < chunk {
			buf = append(buf[:len(buf):len(buf)], make([]byte, chunk)...)[:len(buf)]
		}
		m, err := io.ReadFull(r.r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, unexpected(err)
		}
	}
	return buf, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Writer sends frames on a stream for many goroutines at once. Frames
// queued while a write is in progress go out together in the next write,
// so a burst of small frames costs one system call rather than one each.
// A large raw payload is not copied: it is written from the caller's
// slice, and WriteFrame returns only once it has been written.
// The writer goroutine starts with the first WriteFrame, so that a Writer
// whose only frame is written by WriteLast never starts one.
// The zero value is not usable; use NewWriter.
type Writer struct {
	w io.Writer

	mu      sync.Mutex
	cond    sync.Cond // signalled when a write completes or the writer stops
	segs    [][]byte  // queued data in order: our buffers and callers' large payloads
	tail    []byte    // our buffer that small frames are appended to, after segs
	size    int       // bytes in segs and tail
	spare   [][]byte  // our buffers from earlier writes, for reuse
	queued  uint64    // generation that the queued data will be written as
	written uint64    // last generation fully written
	err     error     // first write error; sticky
	closing bool
	started bool // the writer goroutine was started
	inline  bool // WriteLast is writing on its caller's goroutine
	kick    chan struct{}
	done    chan struct{}
}

const (
	// maxPending is the amount of queued data at which WriteFrame waits
	// for the writer to catch up, so that a fast sender cannot grow memory
	// without bound when the peer reads slowly.
	maxPending = 4 << 20
	// largeRaw is the payload size from which WriteFrame writes from the
	// caller's slice rather than copying it.
	largeRaw = 64 << 10
)

// NewWriter returns a Writer on w. Its writer goroutine starts with the
// first WriteFrame and runs until Close or Fail.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w, kick: make(chan struct{}, 1), done: make(chan struct{}), queued: 1}
	wr.cond.L = &wr.mu
	return wr
}

// WriteFrame queues f for writing and returns once it is queued; with
// flush, or when f.Raw is large, it returns only once f has been written.
// Either way the caller may reuse f's slices when it returns. Frames from
// one goroutine keep their order. It returns the first write error the
// stream had, or io.ErrClosedPipe after Close.
func (w *Writer) WriteFrame(f *Frame, flush bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && !w.closing && w.size > 0 && w.size+f.Size() > maxPending {
		w.cond.Wait()
	}
	if w.err != nil {
		return w.err
	}
	if w.closing {
		return io.ErrClosedPipe
	}
	if w.tail == nil && len(w.spare) > 0 {
		w.tail, w.spare = w.spare[len(w.spare)-1][:0], w.spare[:len(w.spare)-1]
	}
	if f.rawLen() >= largeRaw {
		w.segs = slices.Grow(w.segs, 2+len(f.More))
		w.tail = appendHead(w.tail, f)
		w.queueLarge(f.Raw)
		for _, m := range f.More {
			w.queueLarge(m)
		}
		flush = true
	} else {
		w.tail = AppendFrame(w.tail, f)
	}
	w.size += f.Size()
	gen := w.queued
	if !w.started {
		w.started = true
		go w.loop()
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
	if !flush {
		return nil
	}
	for w.err == nil && w.written < gen {
		w.cond.Wait()
	}
	return w.err
}

// queueLarge queues b, a piece of a large payload, after the frame's
// head: a large piece is written from the caller's slice, a small one is
// copied into our buffer.
func (w *Writer) queueLarge(b []byte) {
	if len(b) < largeRaw {
		w.tail = append(w.tail, b...)
		return
	}
	if len(w.tail) > 0 {
		w.segs = append(w.segs, w.tail)
	}
	w.segs = append(w.segs, b)
	w.tail = nil
}

func (w *Writer) loop() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for w.size == 0 && !w.closing && w.err == nil {
			w.mu.Unlock()
			<-w.kick
			w.mu.Lock()
		}
		if w.size == 0 || w.err != nil {
			w.mu.Unlock()
			return
		}
		segs := w.segs
		if w.tail != nil {
			segs = append(segs, w.tail)
		}
		w.segs, w.tail, w.size = nil, nil, 0
		gen := w.queued
		w.queued++
		w.mu.Unlock()

		var err error
		for _, s := range segs {
			if _, err = w.w.Write(s); err != nil {
				break
			}
		}

		w.mu.Lock()
		// Keep one or two of our buffers; callers' payloads are large and
		// stay with their owners.
		for _, s := range segs {
			if len(w.spare) < 2 && cap(s) <= maxPending && len(s) < largeRaw {
				w.spare = append(w.spare, s[:0])
			}
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		w.written = gen
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// Close writes what is queued, stops the writer goroutine and returns the
// first write error, if any. It does not close the underlying stream.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closing = true
	w.cond.Broadcast()
	started := w.started
	w.mu.Unlock()
	if !started {
		// Nothing was ever queued, and nothing can be now; WriteLast may
		// be writing its frame.
		w.mu.Lock()
		defer w.mu.Unlock()
		for w.inline {
			w.cond.Wait()
		}
		return w.err
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// WriteLast writes f as the last frame and closes the Writer, as
// WriteFrame(f, true) followed by Close does. When the writer goroutine
// was never started, f is written on the calling goroutine, which spares
// starting and scheduling one for a single frame.
func (w *Writer) WriteLast(f *Frame) error {
	w.mu.Lock()
	if w.started || w.err != nil || w.closing {
		w.mu.Unlock()
		if err := w.WriteFrame(f, false); err != nil {
			return err
		}
		return w.Close()
	}
	w.closing, w.inline = true, true
	w.mu.Unlock()
	_, err := w.w.Write(AppendFrame(nil, f))
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.inline = false
	w.cond.Broadcast()
	return w.err
}

// Fail makes every later WriteFrame return err and stops the writer
// without writing what is queued; the owner calls it when the stream is
// known to be broken.
func (w *Writer) Fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
