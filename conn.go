package mp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// The frame kinds of the connection between a parent and a child.
const (
	kindHello    wire.Kind = iota + 1 // child → parent, first frame: header is the token
	kindRequest                       // header: [u8 n][service name, n bytes][service header]
	kindNotify                        // as kindRequest, with no reply
	kindReply                         // header and raw as the handler returned them
	kindReplyErr                      // header: an error as encodeError writes it
	kindCancel                        // the caller no longer waits for request ID
	kindGobType                       // raw: the description of gob type ID (see gobstream.go)
)

// message is a service's payload: a small header and the raw bytes.
type message struct {
	header, raw []byte
}

// handler serves one incoming request or notification. It is called on
// the connection's reader goroutine, so it must not block: it replies
// later, from any goroutine, through req.reply. See concurrent for the
// common case of a handler that runs in its own goroutine.
type handler func(req *request)

// request is an incoming request. Its ctx is cancelled when the caller
// cancels it or the connection breaks.
type request struct {
	c   *conn
	id  uint64 // 0 for a notification
	ctx context.Context
	msg message
	// cancel releases ctx; it is called by reply, by a cancel frame and
	// by the connection breaking.
	cancel context.CancelCauseFunc
}

// reply sends the handler's answer; it does nothing for a notification or
// a request whose caller went away.
func (r *request) reply(m message, err error) {
	if f, ok := r.replyFrame(m, err); ok {
		// A write error means the connection is broken, which the reader
		// reports to the owner; nobody here can do better.
		_ = r.c.w.WriteFrame(&f, false)
	}
}

// replyLast is reply for the last frame this end sends: it also closes
// the connection's writer, once the reply is written.
func (r *request) replyLast(m message, err error) {
	if f, ok := r.replyFrame(m, err); ok {
		_ = r.c.w.WriteLast(&f)
		return
	}
	_ = r.c.w.Close()
}

// replyFrame ends the request and returns the frame that answers it, if
// one is due.
func (r *request) replyFrame(m message, err error) (wire.Frame, bool) {
	r.cancel(context.Canceled)
	if r.id == 0 {
		return wire.Frame{}, false
	}
	r.c.mu.Lock()
	delete(r.c.incoming, r.id)
	r.c.mu.Unlock()
	f := wire.Frame{Kind: kindReply, ID: r.id, Header: m.header, Raw: m.raw}
	if err == nil && f.Size() > r.c.maxFrame {
		err = frameTooLarge(f.Size(), r.c.maxFrame)
	}
	if err != nil {
		f = wire.Frame{Kind: kindReplyErr, ID: r.id, Header: encodeError(err)}
	}
	return f, true
}

// concurrent returns a handler that runs fn in its own goroutine per
// request and replies with its result. The goroutines are waited for by
// conn.close and end when fn returns; fn should return once ctx is done.
func concurrent(fn func(ctx context.Context, m message) (message, error)) handler {
	return func(req *request) {
		req.c.goroutine(func() { req.reply(fn(req.ctx, req.msg)) })
	}
}

// conn is one end of the multiplexed connection between a parent and a
// child: calls in both directions, many in flight at once, replies matched
// by request ID. One reader goroutine per conn dispatches incoming frames;
// the wire.Writer batches outgoing ones. It is safe for concurrent use.
type conn struct {
	nc       stream
	maxFrame int
	r        *wire.Reader
	w        *wire.Writer

	// ctx is the parent of every incoming request's context; it is
	// cancelled, with the connection's error as cause, when it breaks.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // the reader and handler goroutines
	served sync.Once      // serve's

	// onBreak is called once, on the reader goroutine, with the reason
	// the connection ended (io.EOF when the peer closed it).
	onBreak func(error)

	mu       sync.Mutex
	nextID   uint64
	calls    map[uint64]*call
	incoming map[uint64]*request
	handlers map[string]handler
	err      error         // why the connection ended; set once
	broken   chan struct{} // closed when err is set
	closing  bool          // close was called: the end is not an error

	gobs gobTable // gob types described in each direction
}

var (
	// errLost is wrapped by the error of every call that was pending when
	// the connection ended, and of every call made after.
	errLost = errors.New("mp: connection lost")
	// errConnClosed is why a connection ended when conn.close ended it.
	errConnClosed = errors.New("closed by this process")
)

// stream is what a conn runs on: in practice an *os.File for a
// non-blocking socket, which the runtime's poller serves. Using *os.File
// rather than package net keeps net, and with it cgo and the dynamic
// loader, out of programs that do not otherwise need them, which makes
// every child start faster.
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// lazyPoller is implemented by a stream that starts out as a blocking
// descriptor (a Process child's end, see childStream) and moves to the
// runtime's poller when usePoller is called. serve calls it before the
// reader goroutine starts, so that the reader waits in the poller rather
// than in a system call on a thread of its own.
type lazyPoller interface {
	usePoller()
}

// newConn returns a conn on nc that accepts and sends frames of at most
// maxFrame bytes (wire.DefaultMaxFrame when maxFrame <= 0).
func newConn(nc stream, maxFrame int) *conn {
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &conn{
		nc:       nc,
		maxFrame: maxFrame,
		r:        wire.NewReader(nc, maxFrame),
		w:        wire.NewWriter(nc),
		ctx:      ctx,
		cancel:   cancel,
		calls:    map[uint64]*call{},
		incoming: map[uint64]*request{},
		handlers: map[string]handler{},
		broken:   make(chan struct{}),
	}
}

// handle registers h for service. Handlers registered before serve see
// every request; requests for a service with no handler get an error reply.
func (c *conn) handle(service string, h handler) {
	if len(service) > 255 {
		panic("mp: service name too long: " + service)
	}
	c.mu.Lock()
	c.handlers[service] = h
	c.mu.Unlock()
}

// goroutine runs fn in a goroutine that close waits for.
func (c *conn) goroutine(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// serve starts the reader goroutine, once however often it is called. It
// runs until the connection breaks or is closed, then fails every pending
// call and calls onBreak.
func (c *conn) serve() {
	c.served.Do(func() {
		if lp, ok := c.nc.(lazyPoller); ok {
			lp.usePoller()
		}
		c.goroutine(func() {
			for {
				f, err := c.readFrame()
				if err == nil {
					err = c.dispatch(f)
				}
				if err != nil {
					c.fail(err)
					return
				}
			}
		})
	})
}

// readFrame reads the next frame. A peer that closed its end with data of
// ours unread gives ECONNRESET rather than EOF; both mean it hung up.
func (c *conn) readFrame() (wire.Frame, error) {
	f, err := c.r.ReadFrame()
	if errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF
	}
	return f, err
}

func (c *conn) dispatch(f wire.Frame) error {
	switch f.Kind {
	case kindRequest, kindNotify:
		if len(f.Header) < 1 || len(f.Header) < 1+int(f.Header[0]) {
			return fmt.Errorf("%w: request without a service name", wire.ErrMalformed)
		}
		n := int(f.Header[0])
		service := string(f.Header[1 : 1+n])
		id := f.ID
		if f.Kind == kindNotify {
			id = 0
		} else if id == 0 {
			return fmt.Errorf("%w: request with ID 0", wire.ErrMalformed)
		}
		// A notification cannot be cancelled by its caller, so the
		// connection's own context serves: a context of its own would
		// stay registered with c.ctx until the connection ends, since
		// handlers that never reply never release it.
		ctx, cancel := c.ctx, noCancel
		if id != 0 {
			ctx, cancel = context.WithCancelCause(c.ctx)
		}
		req := &request{c: c, id: id, ctx: ctx, cancel: cancel, msg: message{header: f.Header[1+n:], raw: f.Raw}}
		c.mu.Lock()
		h := c.handlers[service]
		if h != nil && id != 0 {
			c.incoming[id] = req
		}
		c.mu.Unlock()
		if h == nil {
			req.reply(message{}, fmt.Errorf("mp: no service %q in process %d", service, os.Getpid()))
			return nil
		}
		h(req)
	case kindReply, kindReplyErr:
		c.mu.Lock()
		cl := c.calls[f.ID]
		delete(c.calls, f.ID)
		c.mu.Unlock()
		if cl == nil {
			// The caller gave up (cancel) before the reply came.
			return nil
		}
		if f.Kind == kindReply {
			cl.reply = message{header: f.Header, raw: f.Raw}
		} else {
			cl.err = decodeError(f.Header)
		}
		close(cl.done)
	case kindCancel:
		c.mu.Lock()
		req := c.incoming[f.ID]
		delete(c.incoming, f.ID)
		c.mu.Unlock()
		if req != nil {
			req.cancel(errCallerCancelled)
		}
	case kindGobType:
		c.gobDefined(f.ID, f.Raw)
	default:
		return fmt.Errorf("%w: unknown frame kind %d", wire.ErrMalformed, f.Kind)
	}
	return nil
}

// noCancel is the cancel function of a notification's context.
func noCancel(error) {}

// frameTooLarge is the error for a message over the frame limit: the
// sender refuses it, since the receiver would drop the connection.
func frameTooLarge(size, max int) error {
	return fmt.Errorf("mp: message of %d bytes exceeds the %d-byte limit of a connection to a child process", size, max)
}

// errCallerCancelled is the cause of a request's ctx when its caller
// stopped waiting.
var errCallerCancelled = errors.New("mp: caller cancelled the request")

// fail ends the connection with err: pending calls fail, incoming
// requests are cancelled, the owner is told.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	cause := err
	if c.closing {
		cause = errConnClosed
	}
	err = fmt.Errorf("%w: %w", errLost, cause)
	c.err = err
	calls := c.calls
	c.calls = nil
	c.mu.Unlock()
	close(c.broken)
	// The owner hears first, so that it can act (kill a misbehaving
	// child) before the peer sees the connection close.
	if c.onBreak != nil {
		c.onBreak(cause)
	}
	c.w.Fail(err)
	c.nc.Close()
	c.cancel(err)
	for _, cl := range calls {
		cl.err = err
		close(cl.done)
	}
}

// close writes what is queued, closes the connection, and waits for the
// reader and handler goroutines; pending calls fail with errLost.
func (c *conn) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	// Bound the flush: a peer that stopped reading must not hold us.
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.w.Close()
	c.nc.Close()
	c.wg.Wait()
}

// brokenErr reports why the connection ended, or nil.
func (c *conn) brokenErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// call is a request in flight.
type call struct {
	c     *conn
	id    uint64
	done  chan struct{} // closed once reply or err is set
	reply message
	err   error
}

func appendService(service string, header []byte) []byte {
	b := make([]byte, 0, 1+len(service)+len(header))
	b = append(b, byte(len(service)))
	b = append(b, service...)
	return append(b, header...)
}

// start sends a request and returns at once; wait collects the reply.
// Requests are answered in any order, so many may be in flight.
func (c *conn) start(service string, m message) (*call, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.nextID++
	cl := &call{c: c, id: c.nextID, done: make(chan struct{})}
	c.calls[cl.id] = cl
	c.mu.Unlock()
	f := wire.Frame{Kind: kindRequest, ID: cl.id, Header: appendService(service, m.header), Raw: m.raw}
	if f.Size() > c.maxFrame {
		c.mu.Lock()
		delete(c.calls, cl.id)
		c.mu.Unlock()
		return nil, frameTooLarge(f.Size(), c.maxFrame)
	}
	if err := c.w.WriteFrame(&f, false); err != nil {
		c.mu.Lock()
		delete(c.calls, cl.id)
		c.mu.Unlock()
		return nil, err
	}
	return cl, nil
}

// wait blocks until the reply arrives, the connection breaks, or ctx is
// done. In the last case it tells the peer to cancel the request and
// returns context.Cause(ctx).
func (cl *call) wait(ctx context.Context) (message, error) {
	select {
	case <-cl.done:
		return cl.reply, cl.err
	case <-ctx.Done():
		cl.abandon()
		return message{}, context.Cause(ctx)
	}
}

// abandon forgets the call and asks the peer to cancel it.
func (cl *call) abandon() {
	c := cl.c
	c.mu.Lock()
	_, pending := c.calls[cl.id]
	delete(c.calls, cl.id)
	c.mu.Unlock()
	if pending {
		_ = c.w.WriteFrame(&wire.Frame{Kind: kindCancel, ID: cl.id}, false)
	}
}

// call is start followed by wait.
func (c *conn) call(ctx context.Context, service string, m message) (message, error) {
	cl, err := c.start(service, m)
	if err != nil {
		return message{}, err
	}
	return cl.wait(ctx)
}

// notify sends a one-way message; the handler's reply is dropped.
func (c *conn) notify(service string, m message) error {
	f := wire.Frame{Kind: kindNotify, Header: appendService(service, m.header), Raw: m.raw}
	return c.w.WriteFrame(&f, false)
}
