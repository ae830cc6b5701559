package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// PipeEnd is one end of a two-way connection made by [Pipe], the analogue
// of the Connection objects that Python's multiprocessing.Pipe() returns.
// What one end sends, the other receives, in order. An end passed to a
// child process inside a task's argument works there with the same
// methods; the state of both directions stays in the process that called
// Pipe, so the two ends may be used by any two processes of the tree it
// started, and crossing costs what the cross-process queues cost.
//
// A PipeEnd is safe for concurrent use by multiple goroutines of one
// process; each end should be used by one process. The zero value is not
// usable; use [Pipe]. A PipeEnd must not be copied after first use. A
// Send "synchronizes before" the Recv that returns its item, as a Put does
// before its Get.
type PipeEnd[T any] struct {
	in, out *Queue[T]

	mu         sync.Mutex
	peeked     bool // v holds an item that Poll received for the next Recv
	closedSelf bool // Close was called on this end
	v          T
}

// Pipe returns the two ends of a new two-way connection, the analogue of
// Python's multiprocessing.Pipe() (duplex). Sending never blocks: each
// direction holds any number of items until they are received.
func Pipe[T any]() (*PipeEnd[T], *PipeEnd[T]) {
	ab, ba := NewQueue[T](0), NewQueue[T](0)
	return &PipeEnd[T]{in: ba, out: ab}, &PipeEnd[T]{in: ab, out: ba}
}

// Send sends v to the other end, the analogue of Python's
// Connection.send. It does not wait for the other end to receive v. It
// returns [ErrClosed] once either end has been closed, and an error if v
// cannot be encoded for another process (only once the end has crossed
// to a child, or from a child).
func (e *PipeEnd[T]) Send(v T) error { return e.out.TryPut(v) }

// Recv returns the next item the other end sent, the analogue of Python's
// Connection.recv. It blocks until there is one, the other end is closed,
// or ctx is done. Once the other end is closed and every item it sent
// has been received, Recv returns [io.EOF] (Python raises EOFError). After
// this end's own Close it returns [ErrClosed]. If ctx is done first, it
// returns context.Cause(ctx).
func (e *PipeEnd[T]) Recv(ctx context.Context) (T, error) {
	e.mu.Lock()
	if e.peeked {
		v := e.v
		var zero T
		e.v, e.peeked = zero, false
		e.mu.Unlock()
		return v, nil
	}
	e.mu.Unlock()
	v, err := e.in.Get(ctx)
	return v, e.recvErr(err)
}

// recvErr turns the end of the incoming direction into io.EOF, unless it
// was this end that closed it.
func (e *PipeEnd[T]) recvErr(err error) error {
	if errors.Is(err, ErrClosed) && !e.isClosed() {
		return io.EOF
	}
	return err
}

// Poll reports whether Recv would return at once, with an item or with
// io.EOF, the analogue of Python's Connection.poll(timeout). It waits
// until that is so or ctx is done: a ctx already done makes it check
// without waiting (Python's poll()), and [context.WithTimeout] gives
// Python's timeout; a ctx that is never done waits as poll(None) does.
func (e *PipeEnd[T]) Poll(ctx context.Context) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.peeked {
		return true
	}
	var v T
	var err error
	if ctx.Err() != nil {
		v, err = e.in.TryGet()
	} else {
		v, err = e.in.Get(ctx)
	}
	switch {
	case err == nil:
		e.v, e.peeked = v, true
		return true
	case errors.Is(err, ErrClosed):
		return true
	}
	return false
}

// Close closes this end, the analogue of Python's Connection.close: the
// other end's Recv returns the items already sent and then [io.EOF], and
// its Send returns [ErrClosed]; items sent to this end and not yet
// received are discarded. Closing a closed end does nothing.
func (e *PipeEnd[T]) Close() {
	e.out.Close()
	e.in.CloseNow()
	e.mu.Lock()
	e.closedSelf = true
	e.mu.Unlock()
}

func (e *PipeEnd[T]) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closedSelf
}

// GobEncode encodes the end as a handle, so that a *PipeEnd inside a
// task's argument crosses to a child process, where it decodes to an end
// with the same methods, as Python's Connection objects are passed in
// Process(args=...). Programs do not call GobEncode themselves.
func (e *PipeEnd[T]) GobEncode() ([]byte, error) {
	in, err := e.in.GobEncode()
	if err != nil {
		return nil, err
	}
	out, err := e.out.GobEncode()
	if err != nil {
		return nil, err
	}
	b := binary.AppendUvarint(nil, uint64(len(in)))
	return append(append(b, in...), out...), nil
}

// GobDecode makes e, a new PipeEnd, the child's side of a handle written
// by [PipeEnd.GobEncode]. It fails outside a child process that mp
// started.
func (e *PipeEnd[T]) GobDecode(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return fmt.Errorf("mp: bad PipeEnd handle")
	}
	e.in, e.out = new(Queue[T]), new(Queue[T])
	if err := e.in.GobDecode(b[k : k+int(n)]); err != nil {
		return err
	}
	return e.out.GobDecode(b[k+int(n):])
}
