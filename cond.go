package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// Cond is a condition variable that works between goroutines and between
// processes: the analogue of Python's multiprocessing.Condition (and
// threading.Condition), with the method names of [sync.Cond]. Passed
// inside a task's argument to a [Process] or a process pool, it is the
// same condition in the child, with the same Lock as L; the process that
// created it owns its state.
//
// A Cond is safe for concurrent use by multiple goroutines. The zero value
// is not usable; use [NewCond]. A Cond must not be copied after first use.
type Cond struct {
	// L is the lock held while observing or changing the condition. It
	// must not be changed once the Cond is in use.
	L *Lock

	id      atomic.Uint64
	mu      sync.Mutex
	waiters []chan struct{} // in arrival order; closed when signalled

	r *remoteObj // in a child: the owner's condition
}

// NewCond returns a Cond with lock l. It is the analogue of Python's
// multiprocessing.Condition(l). It panics if l is nil.
func NewCond(l *Lock) *Cond {
	if l == nil {
		panic("mp: NewCond with a nil Lock")
	}
	return &Cond{L: l}
}

// The operations of a Cond's protocol.
const (
	sopCondWait  byte = iota + 1 // blocking
	sopSignal                    // one-way
	sopBroadcast                 // one-way
)

// Wait releases c.L, waits until woken by Signal or Broadcast or until ctx
// is done, and acquires c.L again before it returns, in every case. It
// returns nil when woken, context.Cause(ctx) when ctx was done first, and
// an error wrapping [ErrLost] as well when re-acquiring c.L reported a
// holder's death ([Lock.Lock]). Calling Wait without holding c.L is a
// programmer error and panics with an "mp: ..." message. As with
// [sync.Cond], a woken caller checks its condition again in a loop.
//
// In a child, Wait is one round trip to the owner, which releases and
// re-acquires the lock on the child's behalf.
func (c *Cond) Wait(ctx context.Context) error {
	if c.r != nil {
		if !c.L.heldBy(nil) {
			panic("mp: Cond.Wait without holding its Lock")
		}
		_, _, err := c.r.wait(ctx, sopCondWait, nil)
		return err
	}
	err := c.waitAs(ctx, nil)
	if errors.Is(err, errCondNotHeld) {
		panic("mp: Cond.Wait without holding its Lock")
	}
	return err
}

// errCondNotHeld fails a Wait whose caller does not hold the lock.
var errCondNotHeld = errors.New("mp: Cond.Wait without holding its Lock")

// Signal wakes the longest waiter, in any process, if there is one. The
// caller need not hold c.L. In a child, Signal is a one-way message.
func (c *Cond) Signal() {
	if c.r != nil {
		c.r.notify(sopSignal)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) > 0 {
		close(c.waiters[0])
		c.waiters = slices.Delete(c.waiters, 0, 1)
	}
}

// Broadcast wakes every waiter, in every process. The caller need not hold
// c.L. In a child, Broadcast is a one-way message.
func (c *Cond) Broadcast() {
	if c.r != nil {
		c.r.notify(sopBroadcast)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		close(w)
	}
	c.waiters = nil
}

func (c *Cond) waitAs(ctx context.Context, p *sharedPeer) error {
	if !c.L.heldBy(p) {
		return errCondNotHeld
	}
	// Queued before the lock is released, so that a Signal made under the
	// lock right after finds it.
	w := make(chan struct{})
	c.mu.Lock()
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	if err := c.L.unlockBy(p); err != nil {
		c.remove(w)
		return err
	}
	var err error
	select {
	case <-w:
	case <-ctx.Done():
		if c.remove(w) {
			err = context.Cause(ctx)
		} // else a signal came first and is this caller's
	}
	// The lock comes back whatever ctx says; only the end of a child's
	// connection stops that, when nobody is left to hold it.
	relock := context.Background()
	if p != nil {
		relock = p.ch.conn.Ctx
	}
	if lerr := c.L.lockBy(relock, p); lerr != nil {
		err = errors.Join(err, lerr)
	}
	return err
}

// remove takes w off the waiters and reports whether it was there.
func (c *Cond) remove(w chan struct{}) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.waiters, w); i >= 0 {
		c.waiters = slices.Delete(c.waiters, i, i+1)
		return true
	}
	return false
}

func (c *Cond) serve(r *sreq) {
	switch r.op {
	case sopCondWait:
		r.block(func(ctx context.Context) (wire.Message, error) { return wire.Message{}, c.waitAs(ctx, r.p) })
	case sopSignal:
		c.Signal()
		r.reply(wire.Message{}, nil)
	case sopBroadcast:
		c.Broadcast()
		r.reply(wire.Message{}, nil)
	default:
		r.bad(fmt.Sprintf("unknown Cond operation %d", r.op))
	}
}

// gone has nothing to release: a waiter of a dead child ends with its
// request's context and does not get the lock back.
func (c *Cond) gone(*sharedPeer) {}

// GobEncode encodes the condition and its lock as a handle, so that a
// *Cond inside a task's argument reaches the child as the same condition.
// Programs do not call it themselves. It fails in a child for a condition
// received from the parent.
func (c *Cond) GobEncode() ([]byte, error) {
	if c.r != nil || c.L == nil {
		return nil, errForwarded("Cond")
	}
	if _, err := c.L.GobEncode(); err != nil {
		return nil, err
	}
	b := []byte{1}
	b = binary.AppendUvarint(b, shareObj(&c.id, c))
	b = binary.AppendUvarint(b, c.L.id.Load())
	return append(b, "Cond"...), nil
}

// GobDecode makes c, a new Cond, the child's side of a handle written by
// [Cond.GobEncode]. It fails outside a child process that mp started.
func (c *Cond) GobDecode(b []byte) error {
	h := hdrReader{b: b}
	v := h.byte()
	cid, lid := h.uvarint(), h.uvarint()
	if v != 1 || h.bad || string(h.b) != "Cond" {
		return errors.New("mp: bad Cond handle")
	}
	if parentConn == nil {
		return errors.New("mp: a Cond handle can be decoded only in a child process that mp started")
	}
	c.r = remoteFor(cid)
	c.L = &Lock{r: remoteFor(lid)}
	return nil
}
