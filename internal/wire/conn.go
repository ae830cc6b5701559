package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The frame kinds of the connection between a parent and a child.
const (
	KindHello    Kind = iota + 1 // child → parent, first frame: header is the token
	KindRequest                  // header: [u8 n][service name, n bytes][service header]
	KindNotify                   // as kindRequest, with no reply
	KindReply                    // header and raw as the handler returned them
	KindReplyErr                 // header: an error as encodeError writes it
	KindCancel                   // the caller no longer waits for request ID
	KindGobType                  // raw: the description of gob type ID (see gobstream.go)
)

// Message is a service's payload: a small header and the raw bytes.
type Message struct {
	Header, Raw []byte
	// More holds raw bytes sent after Raw without being joined to it
	// (see Frame.More); received messages have them in Raw.
	More [][]byte
}

// Handler serves one incoming request or notification. It is called on
// the connection's reader goroutine, so it must not block: it replies
// later, from any goroutine, through req.reply. See concurrent for the
// common case of a Handler that runs in its own goroutine.
type Handler func(req *Request)

// Request is an incoming Request. Its ctx is cancelled when the caller
// cancels it or the connection breaks.
type Request struct {
	Conn *Conn
	id   uint64 // 0 for a notification
	Ctx  context.Context
	Msg  Message
	// cancel releases ctx; it is called by reply, by a cancel frame and
	// by the connection breaking.
	cancel context.CancelCauseFunc
}

// IsNotification reports whether the request is a notification, which
// gets no reply.
func (r *Request) IsNotification() bool { return r.id == 0 }

// Reply sends the handler's answer; it does nothing for a notification or
// a request whose caller went away. The answer is left to the writer
// goroutine, so that the answers to a stream of requests go out together
// (see Writer.QueueFrame); ReplyNow writes it at once.
func (r *Request) Reply(m Message, err error) {
	if f, ok := r.replyFrame(m, err); ok {
		// A write error means the connection is broken, which the reader
		// reports to the owner; nobody here can do better.
		_ = r.Conn.w.QueueFrame(&f)
	}
}

// ReplyNow is Reply for an answer that nothing follows at once: it is
// written on the calling goroutine if no write is under way, which spares
// the caller at the other end the wait for the writer goroutine.
func (r *Request) ReplyNow(m Message, err error) {
	if f, ok := r.replyFrame(m, err); ok {
		_ = r.Conn.w.WriteFrame(&f, false)
	}
}

// ReplyLast is reply for the last frame this end sends: it also closes
// the connection's writer, once the reply is written.
func (r *Request) ReplyLast(m Message, err error) {
	if f, ok := r.replyFrame(m, err); ok {
		_ = r.Conn.w.WriteLast(&f)
		return
	}
	_ = r.Conn.w.Close()
}

// replyFrame ends the request and returns the frame that answers it, if
// one is due.
func (r *Request) replyFrame(m Message, err error) (Frame, bool) {
	r.cancel(context.Canceled)
	if r.id == 0 {
		return Frame{}, false
	}
	r.Conn.mu.Lock()
	delete(r.Conn.incoming, r.id)
	r.Conn.mu.Unlock()
	f := Frame{Kind: KindReply, ID: r.id, Header: m.Header, Raw: m.Raw}
	if err == nil && f.Size() > r.Conn.maxFrame {
		err = FrameTooLarge(f.Size(), r.Conn.maxFrame)
	}
	if err != nil {
		f = Frame{Kind: KindReplyErr, ID: r.id, Header: r.Conn.errs.EncodeError(err)}
	}
	return f, true
}

// Concurrent returns a handler that runs fn in its own goroutine per
// request and replies with its result. The goroutines are waited for by
// conn.close and end when fn returns; fn should return once ctx is done.
func Concurrent(fn func(ctx context.Context, m Message) (Message, error)) Handler {
	return func(req *Request) {
		req.Conn.Go(func() { req.Reply(fn(req.Ctx, req.Msg)) })
	}
}

// Conn is one end of the multiplexed connection between a parent and a
// child: calls in both directions, many in flight at once, replies matched
// by request ID. One reader goroutine per Conn dispatches incoming frames;
// the Writer batches outgoing ones. It is safe for concurrent use.
type Conn struct {
	// Stream is what the connection runs on; its deadlines bound the
	// reads and writes in progress.
	Stream   Stream
	maxFrame int
	r        *Reader
	w        *Writer
	errs     ErrorCodec

	// Ctx is the parent of every incoming request's context; it is
	// cancelled, with the connection's error as cause, when it breaks.
	Ctx     context.Context
	cancel  context.CancelCauseFunc
	wg      sync.WaitGroup // the reader and handler goroutines
	served  sync.Once      // serve's
	serving atomic.Bool    // Serve was called: a reader ends the connection
	// directMu is held by a goroutine reading directly (ReadDirect), so
	// that Close can wait for it.
	directMu sync.Mutex

	// OnBreak is called once, on the reader goroutine, with the reason
	// the connection ended (io.EOF when the peer closed it).
	OnBreak func(error)

	mu       sync.Mutex
	nextID   uint64
	calls    map[uint64]*Call
	incoming map[uint64]*Request
	handlers map[string]Handler
	err      error         // why the connection ended; set once
	Broken   chan struct{} // closed when err is set
	closing  bool          // close was called: the end is not an error

	gobs gobTable // gob types described in each direction
}

// ErrorCodec turns the errors that cross a connection into bytes and
// back. The connection carries them as opaque bytes; mp's codec keeps
// their messages, the sentinels they wrap and their gob-registered types.
type ErrorCodec interface {
	EncodeError(error) []byte
	DecodeError([]byte) error
}

var (
	// ErrConnLost is wrapped by the error of every call that was pending when
	// the connection ended, and of every call made after.
	ErrConnLost = errors.New("mp: connection lost")
	// errConnClosed is why a connection ended when conn.close ended it.
	errConnClosed = errors.New("closed by this process")
)

// Stream is what a conn runs on: in practice an *os.File for a
// non-blocking socket, which the runtime's poller serves. Using *os.File
// rather than package net keeps net, and with it cgo and the dynamic
// loader, out of programs that do not otherwise need them, which makes
// every child start faster.
type Stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// LazyPoller is implemented by a stream that starts out as a blocking
// descriptor (a Process child's end, see childStream) and moves to the
// runtime's poller when usePoller is called. serve calls it before the
// reader goroutine starts, so that the reader waits in the poller rather
// than in a system call on a thread of its own.
type LazyPoller interface {
	UsePoller()
}

// NewConn returns a conn on nc that accepts and sends frames of at most
// maxFrame bytes (DefaultMaxFrame when maxFrame <= 0).
func NewConn(nc Stream, maxFrame int, errs ErrorCodec) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Conn{
		Stream:   nc,
		maxFrame: maxFrame,
		errs:     errs,
		r:        NewReader(readerOf(nc), maxFrame),
		w:        NewWriter(nc),
		Ctx:      ctx,
		cancel:   cancel,
		calls:    map[uint64]*Call{},
		incoming: map[uint64]*Request{},
		handlers: map[string]Handler{},
		Broken:   make(chan struct{}),
	}
}

// Handle registers h for service. Handlers registered before serve see
// every request; requests for a service with no handler get an error reply.
func (c *Conn) Handle(service string, h Handler) {
	if len(service) > 255 {
		panic("mp: service name too long: " + service)
	}
	c.mu.Lock()
	c.handlers[service] = h
	c.mu.Unlock()
}

// OnEnd runs f, in a goroutine of its own, once the connection has ended,
// and makes Close wait for it: what f releases is released by the time
// Close returns. It must be called while the connection serves, from a
// handler or a goroutine that Close waits for.
func (c *Conn) OnEnd(f func()) {
	c.wg.Add(1)
	context.AfterFunc(c.Ctx, func() {
		defer c.wg.Done()
		f()
	})
}

// Go runs fn in a Go that close waits for.
func (c *Conn) Go(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// Serve starts the reader goroutine, once however often it is called. It
// runs until the connection breaks or is closed, then fails every pending
// call and calls onBreak.
func (c *Conn) Serve() {
	c.served.Do(func() {
		c.serving.Store(true)
		if lp, ok := c.Stream.(LazyPoller); ok {
			lp.UsePoller()
		}
		ds, _ := c.Stream.(directStream)
		if ds != nil {
			// The reader goroutine reads first: frames may be buffered
			// already, and it gives up the right only between frames,
			// with nothing buffered (see ReadDirect).
			ds.startReading()
		}
		c.Go(func() {
			for {
				if ds != nil && c.r.Buffered() == 0 {
					ds.stopReading()
					for {
						if err := ds.awaitData(); err != nil {
							c.Fail(err)
							return
						}
						if ds.startReading() {
							break
						}
					}
				}
				f, err := c.ReadFrame()
				if err == nil {
					err = c.Dispatch(f)
				}
				if err != nil {
					c.Fail(err)
					return
				}
			}
		})
	})
}

// ReadFrame reads the next frame. A peer that closed its end with data of
// ours unread gives ECONNRESET rather than EOF; both mean it hung up.
func (c *Conn) ReadFrame() (Frame, error) {
	f, err := c.r.ReadFrame()
	if errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF
	}
	return f, err
}

func (c *Conn) Dispatch(f Frame) error {
	switch f.Kind {
	case KindRequest, KindNotify:
		if len(f.Header) < 1 || len(f.Header) < 1+int(f.Header[0]) {
			return fmt.Errorf("%w: request without a service name", ErrMalformed)
		}
		n := int(f.Header[0])
		service := string(f.Header[1 : 1+n])
		id := f.ID
		if f.Kind == KindNotify {
			id = 0
		} else if id == 0 {
			return fmt.Errorf("%w: request with ID 0", ErrMalformed)
		}
		// A notification cannot be cancelled by its caller, so the
		// connection's own context serves: a context of its own would
		// stay registered with c.ctx until the connection ends, since
		// handlers that never reply never release it.
		ctx, cancel := c.Ctx, noCancel
		if id != 0 {
			ctx, cancel = context.WithCancelCause(c.Ctx)
		}
		req := &Request{Conn: c, id: id, Ctx: ctx, cancel: cancel, Msg: Message{Header: f.Header[1+n:], Raw: f.Raw}}
		c.mu.Lock()
		h := c.handlers[service]
		if h != nil && id != 0 {
			c.incoming[id] = req
		}
		c.mu.Unlock()
		if h == nil {
			req.Reply(Message{}, fmt.Errorf("mp: no service %q in process %d", service, os.Getpid()))
			return nil
		}
		h(req)
	case KindReply, KindReplyErr:
		c.mu.Lock()
		cl := c.calls[f.ID]
		delete(c.calls, f.ID)
		c.mu.Unlock()
		if cl == nil {
			// The caller gave up (cancel) before the reply came.
			return nil
		}
		if f.Kind == KindReply {
			cl.Reply = Message{Header: f.Header, Raw: f.Raw}
		} else {
			cl.Err = c.errs.DecodeError(f.Header)
		}
		if cl.hook != nil {
			cl.hook.OnReply(cl)
		}
		close(cl.Done)
	case KindCancel:
		c.mu.Lock()
		req := c.incoming[f.ID]
		delete(c.incoming, f.ID)
		c.mu.Unlock()
		if req != nil {
			req.cancel(ErrCallerCancelled)
		}
	case KindGobType:
		c.gobDefined(f.ID, f.Raw)
	default:
		return fmt.Errorf("%w: unknown frame kind %d", ErrMalformed, f.Kind)
	}
	return nil
}

// noCancel is the cancel function of a notification's context.
func noCancel(error) {}

// FrameTooLarge is the error for a message over the frame limit: the
// sender refuses it, since the receiver would drop the connection.
func FrameTooLarge(size, max int) error {
	return fmt.Errorf("mp: message of %d bytes exceeds the %d-byte limit of a connection to a child process", size, max)
}

// ErrCallerCancelled is the cause of a request's ctx when its caller
// stopped waiting.
var ErrCallerCancelled = errors.New("mp: caller cancelled the request")

// Fail ends the connection with err: pending calls Fail, incoming
// requests are cancelled, the owner is told.
func (c *Conn) Fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	cause := err
	if c.closing {
		cause = errConnClosed
	}
	err = fmt.Errorf("%w: %w", ErrConnLost, cause)
	c.err = err
	calls := c.calls
	c.calls = nil
	c.mu.Unlock()
	close(c.Broken)
	// The owner hears first, so that it can act (kill a misbehaving
	// child) before the peer sees the connection close.
	if c.OnBreak != nil {
		c.OnBreak(cause)
	}
	c.w.Fail(err)
	c.Stream.Close()
	c.cancel(err)
	for _, cl := range calls {
		cl.Err = err
		close(cl.Done)
	}
}

// Close writes what is queued, closes the connection, and waits for the
// reader and handler goroutines; pending calls fail with errLost.
func (c *Conn) Close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	// Bound the flush: a peer that stopped reading must not hold us.
	c.Stream.SetWriteDeadline(time.Now().Add(time.Second))
	c.w.Close()
	c.Stream.Close()
	// A direct reader's waits end with the stream: wait for it to stop
	// dispatching, so that nothing it starts outlives Close.
	c.directMu.Lock()
	c.directMu.Unlock() //lint:ignore SA2001 the lock is taken only to wait for its holder
	if !c.serving.Load() {
		// No reader will see the stream end: end the connection here,
		// so that what OnEnd registered runs.
		c.Fail(errConnClosed)
	}
	c.wg.Wait()
}

// Err reports why the connection ended, or nil.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Call is a request in flight.
type Call struct {
	c     *Conn
	ID    uint64
	Done  chan struct{} // closed once reply or err is set
	Reply Message
	Err   error
	hook  ReplyHook
}

// ReplyHook is told of a call's reply as it arrives, on the connection's
// reader goroutine, before the call's Done is closed: it lets the reply
// wake the goroutine that waits for it directly, rather than through the
// goroutine that watches Done. It must not block. It is not called when
// the connection ends before the reply.
type ReplyHook interface {
	OnReply(cl *Call)
}

// AppendService returns the header of a request for service: the
// service's name, then the service's own header.
func AppendService(service string, header []byte) []byte {
	b := make([]byte, 0, 1+len(service)+len(header))
	b = append(b, byte(len(service)))
	b = append(b, service...)
	return append(b, header...)
}

// Start sends a request and returns at once; wait collects the reply.
// Requests are answered in any order, so many may be in flight.
func (c *Conn) Start(service string, m Message) (*Call, error) {
	return c.StartHooked(service, m, nil, false)
}

// StartHooked is Start with a hook told of the reply (see ReplyHook). With
// more, more frames follow at once, and the request is left to the
// writer goroutine to write with them (see Writer.QueueFrame).
func (c *Conn) StartHooked(service string, m Message, hook ReplyHook, more bool) (*Call, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.nextID++
	cl := &Call{c: c, ID: c.nextID, Done: make(chan struct{}), hook: hook}
	c.calls[cl.ID] = cl
	c.mu.Unlock()
	f := Frame{Kind: KindRequest, ID: cl.ID, Header: AppendService(service, m.Header), Raw: m.Raw, More: m.More}
	if f.Size() > c.maxFrame {
		c.mu.Lock()
		delete(c.calls, cl.ID)
		c.mu.Unlock()
		return nil, FrameTooLarge(f.Size(), c.maxFrame)
	}
	var err error
	if more {
		err = c.w.QueueFrame(&f)
	} else {
		err = c.w.WriteFrame(&f, false)
	}
	if err != nil && !errors.Is(err, ErrConnLost) {
		// The request did not go out whole: the connection is broken,
		// and the peer never saw the request.
		err = fmt.Errorf("%w: %w", ErrConnLost, err)
	}
	if err != nil {
		c.mu.Lock()
		delete(c.calls, cl.ID)
		c.mu.Unlock()
		return nil, err
	}
	return cl, nil
}

// Conn returns the connection the call was made on.
func (cl *Call) Conn() *Conn { return cl.c }

// Wait blocks until the reply arrives, the connection breaks, or ctx is
// done. In the last case it tells the peer to cancel the request and
// returns context.Cause(ctx).
func (cl *Call) Wait(ctx context.Context) (Message, error) {
	select {
	case <-cl.Done:
		return cl.Reply, cl.Err
	case <-ctx.Done():
		cl.Abandon()
		return Message{}, context.Cause(ctx)
	}
}

// Cancel asks the peer to cancel the call, whose reply is still awaited:
// the request's context ends there, and the reply (the task's outcome)
// comes as usual.
func (cl *Call) Cancel() error {
	return cl.c.w.WriteFrame(&Frame{Kind: KindCancel, ID: cl.ID}, false)
}

// Abandon forgets the call and asks the peer to cancel it.
func (cl *Call) Abandon() {
	c := cl.c
	c.mu.Lock()
	_, pending := c.calls[cl.ID]
	delete(c.calls, cl.ID)
	c.mu.Unlock()
	if pending {
		_ = c.w.WriteFrame(&Frame{Kind: KindCancel, ID: cl.ID}, false)
	}
}

// Call is start followed by wait. The caller reads the reply itself when
// it can (see ReadDirect).
func (c *Conn) Call(ctx context.Context, service string, m Message) (Message, error) {
	cl, err := c.Start(service, m)
	if err != nil {
		return Message{}, err
	}
	c.ReadDirect(ctx, cl.Done)
	return cl.Wait(ctx)
}

// Notify sends a one-way message; the handler's reply is dropped.
//
// Nobody waits on a notification, and they come in streams (a queue's
// items and acknowledgements), so it is left to the writer goroutine to
// go out with the ones that follow (see Writer.QueueFrame).
func (c *Conn) Notify(service string, m Message) error {
	f := Frame{Kind: KindNotify, Header: AppendService(service, m.Header), Raw: m.Raw, More: m.More}
	return c.w.QueueFrame(&f)
}
