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

// Buffered returns the number of bytes read from the stream and not yet
// returned in a frame.
func (r *Reader) Buffered() int { return r.r.Buffered() }

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

// Writer sends frames on a stream for many goroutines at once.
//
// A frame written while no write is under way goes out at once on the
// caller's goroutine, when the stream can try a write without blocking
// (see TryWriter): a call on an idle connection then costs no hand-off to
// another goroutine, which on a round trip to a child is most of the time
// the wire itself does not take. Whatever the socket does not take at once,
// and every frame queued while a write is under way, is written by the
// Writer's goroutine, which starts when first needed; frames queued
// together go out in one system call, so a burst of small frames costs one
// rather than one each. A large raw payload is not copied: it is written
// from the caller's slice, and WriteFrame returns only once it has been
// written. The zero value is not usable; use NewWriter.
type Writer struct {
	w   io.Writer
	try TryWriter // w, when it can write without blocking; else nil

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
	started bool     // the writer goroutine was started
	busy    bool     // a write is under way, on the writer goroutine or a caller's
	scratch [][]byte // the segments of the write under way, reused
	kick    chan struct{}
	done    chan struct{}
}

// TryWriter is implemented by a stream that can write without blocking.
// TryWrite writes bufs in order, as much as the stream takes at once, and
// returns how many bytes it wrote; a full stream is not an error.
type TryWriter interface {
	TryWrite(bufs [][]byte) (int, error)
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

// NewWriter returns a Writer on w. Its writer goroutine starts when a
// write cannot be made on the caller's goroutine, and runs until Close or
// Fail.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w, kick: make(chan struct{}, 1), done: make(chan struct{}), queued: 1}
	wr.try = tryWriterOf(w)
	wr.cond.L = &wr.mu
	return wr
}

// WriteFrame queues f for writing and returns once it is queued; with
// flush, or when f.Raw is large, it returns only once f has been written.
// Either way the caller may reuse f's slices when it returns. Frames from
// one goroutine keep their order. It returns the first write error the
// stream had, or io.ErrClosedPipe after Close.
func (w *Writer) WriteFrame(f *Frame, flush bool) error {
	return w.write(f, flush, true)
}

// QueueFrame is WriteFrame for a frame that more frames follow at once,
// from the same goroutine: it leaves the frame to the writer goroutine,
// which writes it together with the ones that follow, in one system call
// rather than one each, unless its payload is large.
func (w *Writer) QueueFrame(f *Frame) error {
	return w.write(f, false, false)
}

// write queues f, and writes what is queued on the caller's goroutine if
// now is set and no write is under way; otherwise it leaves it to the
// writer goroutine. With flush it returns once f is written.
func (w *Writer) write(f *Frame, flush, now bool) error {
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
	var err error
	if !w.busy {
		if w.try != nil && (now || flush) {
			err = w.tryWrite()
		} else {
			w.wakeLoop()
		}
	}
	if !flush {
		// Only this call's own write can fail it: an error that came
		// after its frame was written (the connection breaking as the
		// peer exits) is not the frame's.
		return err
	}
	for w.err == nil && w.written < gen {
		w.cond.Wait()
	}
	if w.written >= gen {
		return nil
	}
	return w.err
}

// take removes the queued data, to be written as one generation, and
// marks a write under way.
func (w *Writer) take() (segs [][]byte, gen uint64) {
	// One write is under way at a time, and nothing keeps its segments
	// once it is finished, so they can be gathered in the same slice each
	// time: a write per frame, as on an idle connection, allocates
	// nothing.
	segs = append(w.scratch[:0], w.segs...)
	if w.tail != nil {
		segs = append(segs, w.tail)
	}
	w.scratch = segs
	clear(w.segs)
	w.segs, w.tail, w.size = w.segs[:0], nil, 0
	gen = w.queued
	w.queued++
	w.busy = true
	return segs, gen
}

// finish records the end of a write of segs as generation gen, with err,
// and keeps one or two of our buffers for reuse; callers' payloads are
// large and stay with their owners.
func (w *Writer) finish(segs [][]byte, gen uint64, err error) {
	for _, s := range segs {
		if len(w.spare) < 2 && cap(s) <= maxPending && len(s) < largeRaw {
			w.spare = append(w.spare, s[:0])
		}
	}
	// The payloads of callers are theirs again: let go of them.
	clear(w.scratch)
	if err != nil && w.err == nil {
		w.err = err
	}
	if err == nil {
		w.written = gen
	}
	w.busy = false
	w.cond.Broadcast()
	// Frames queued while this write was under way, and a Close waiting
	// for it, are the writer goroutine's to see to.
	if w.size > 0 && w.err == nil || w.closing && w.started {
		w.wakeLoop()
	}
}

// tryWrite writes what is queued on the caller's goroutine, as far as the
// stream takes it without blocking, and returns the error of that write. What it does not take is put back at
// the head of the queue, as part of the next generation, for the writer
// goroutine. It is called with w.mu held and no write under way, and
// releases w.mu while it writes.
func (w *Writer) tryWrite() error {
	segs, gen := w.take()
	w.mu.Unlock()
	n, err := w.try.TryWrite(segs)
	w.mu.Lock()
	if err != nil {
		w.finish(segs, gen, err)
		return w.err
	}
	done := 0
	for done < len(segs) && n >= len(segs[done]) {
		n -= len(segs[done])
		done++
	}
	if done == len(segs) {
		w.finish(segs, gen, nil)
		return nil
	}
	// The unwritten part keeps its place before anything queued since,
	// and joins the next generation, whose writing covers this one, which
	// is therefore not marked written: part of an earlier one may have
	// been put back by an earlier try, and be in it too. A
	// short remainder is copied, so that the part of a caller's payload
	// it may be never becomes one of our buffers to reuse.
	head := segs[done][n:]
	if len(head) < largeRaw {
		head = append([]byte(nil), head...)
	}
	left := make([][]byte, 0, len(segs)-done+len(w.segs))
	left = append(left, head)
	left = append(left, segs[done+1:]...)
	left = append(left, w.segs...)
	w.segs = left
	for _, s := range left[:len(segs)-done] {
		w.size += len(s)
	}
	w.finish(segs[:done], w.written, nil)
	return nil
}

// wakeLoop makes the writer goroutine write what is queued, starting it
// if need be.
func (w *Writer) wakeLoop() {
	if !w.started {
		w.started = true
		go w.loop()
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
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
		for w.err == nil && (w.busy || w.size == 0 && !w.closing) {
			w.mu.Unlock()
			<-w.kick
			w.mu.Lock()
		}
		if w.size == 0 || w.err != nil {
			w.mu.Unlock()
			return
		}
		segs, gen := w.take()
		w.mu.Unlock()

		var err error
		for _, s := range segs {
			if _, err = w.w.Write(s); err != nil {
				break
			}
		}

		w.mu.Lock()
		w.finish(segs, gen, err)
		w.mu.Unlock()
	}
}

// Close writes what is queued, stops the writer goroutine and returns the
// first write error, if any. It does not close the underlying stream.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closing = true
	w.cond.Broadcast()
	// A write on a caller's goroutine finishes first; what it leaves goes
	// to the writer goroutine.
	for w.busy {
		w.cond.Wait()
	}
	if w.size > 0 && w.err == nil {
		w.wakeLoop()
	}
	started := w.started
	w.mu.Unlock()
	if started {
		select {
		case w.kick <- struct{}{}:
		default:
		}
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// WriteLast writes f as the last frame and closes the Writer, as
// WriteFrame(f, true) followed by Close does. When nothing else is being
// written, f is written on the calling goroutine, blocking if need be,
// which spares starting and scheduling a goroutine for a single frame.
func (w *Writer) WriteLast(f *Frame) error {
	w.mu.Lock()
	if w.started || w.busy || w.size > 0 || w.err != nil || w.closing {
		w.mu.Unlock()
		if err := w.WriteFrame(f, false); err != nil {
			return err
		}
		return w.Close()
	}
	w.closing, w.busy = true, true
	w.mu.Unlock()
	_, err := w.w.Write(AppendFrame(nil, f))
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.busy = false
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
