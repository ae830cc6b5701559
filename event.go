package mp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// Event is a flag that goroutines and processes wait for: the analogue of
// Python's multiprocessing.Event (and threading.Event). Passed inside a
// task's argument to a [Process] or a process pool, it is the same event
// in the child; the process that created it owns its state, and each of a
// child's calls is one round trip to it.
//
// An Event is safe for concurrent use by multiple goroutines. The zero
// value is a clear event. An Event must not be copied after first use.
type Event struct {
	id atomic.Uint64

	mu  sync.Mutex
	set bool
	ch  chan struct{} // closed by Set; made by the first Wait after a Clear

	r *remoteObj // in a child: the owner's event
}

// NewEvent returns a clear Event. It is the analogue of Python's
// multiprocessing.Event().
func NewEvent() *Event { return &Event{} }

// The operations of an Event's protocol.
const (
	sopSet byte = iota + 1
	sopClear
	sopIsSet // reply header: [1] if set
	sopWait  // blocking
)

// Set sets the flag and wakes every waiter, in every process. A call to
// Set "synchronizes before" the return of any Wait call that it unblocks.
func (e *Event) Set() {
	if e.r != nil {
		_, _ = e.r.call(sopSet, nil)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.set {
		e.set = true
		if e.ch != nil {
			close(e.ch)
			e.ch = nil
		}
	}
}

// Clear clears the flag; later Wait calls block until the next Set.
func (e *Event) Clear() {
	if e.r != nil {
		_, _ = e.r.call(sopClear, nil)
		return
	}
	e.mu.Lock()
	e.set = false
	e.mu.Unlock()
}

// IsSet reports whether the flag is set.
func (e *Event) IsSet() bool {
	if e.r != nil {
		m, err := e.r.call(sopIsSet, nil)
		return err == nil && len(m.Header) == 1 && m.Header[0] == 1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Wait blocks until the flag is set or ctx is done. It returns nil at once
// if the flag is set. When ctx is done first, Wait returns
// context.Cause(ctx); nothing of the call is left behind.
func (e *Event) Wait(ctx context.Context) error {
	if e.r != nil {
		_, _, err := e.r.wait(ctx, sopWait, nil)
		return err
	}
	e.mu.Lock()
	if e.set {
		e.mu.Unlock()
		return nil
	}
	if e.ch == nil {
		e.ch = make(chan struct{})
	}
	ch := e.ch
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (e *Event) serve(r *sreq) {
	switch r.op {
	case sopSet:
		e.Set()
		r.reply(wire.Message{}, nil)
	case sopClear:
		e.Clear()
		r.reply(wire.Message{}, nil)
	case sopIsSet:
		r.replyBool(e.IsSet())
	case sopWait:
		r.block(func(ctx context.Context) (wire.Message, error) { return wire.Message{}, e.Wait(ctx) })
	default:
		r.bad(fmt.Sprintf("unknown Event operation %d", r.op))
	}
}

// gone has nothing to release: a waiter of a dead child ends with its
// request's context.
func (e *Event) gone(*sharedPeer) {}

// GobEncode encodes the event as a handle, so that an *Event inside a
// task's argument reaches the child as the same event. Programs do not
// call it themselves. It fails in a child for an event received from the
// parent.
func (e *Event) GobEncode() ([]byte, error) {
	if e.r != nil {
		return nil, errForwarded("Event")
	}
	return encodeHandle(shareObj(&e.id, e), "Event"), nil
}

// GobDecode makes e, a new Event, the child's side of a handle written by
// [Event.GobEncode]. It fails outside a child process that mp started.
func (e *Event) GobDecode(b []byte) error {
	r, err := decodeHandle(b, "Event", "Event")
	if err != nil {
		return err
	}
	e.r = r
	return nil
}
