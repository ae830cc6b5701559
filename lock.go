package mp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// Lock is a mutual exclusion lock that works between goroutines and
// between processes: the analogue of Python's multiprocessing.Lock (and of
// threading.Lock). Passed inside a task's argument to a [Process] or a
// process pool, it is the same lock in the child; the process that created
// it owns its state, and a child's Lock is one round trip to it.
//
// Like a [sync.Mutex] and unlike an RLock, a Lock is not tied to the
// goroutine that locked it: any goroutine of the holding process may
// unlock it. Waiters are served in arrival order.
//
// Unlike Python's, a Lock is robust: when a child process dies holding it
// — it crashed, was killed, or returned without unlocking — the lock is
// released, and the next Lock call that acquires it returns an error
// wrapping [ErrLost] while holding the lock, as a robust mutex reports
// its owner's death. The data the lock guards may be half-updated; the
// caller decides, then unlocks.
//
// A Lock is safe for concurrent use by multiple goroutines. The zero value
// is an unlocked lock. A Lock must not be copied after first use.
//
// In the owner, an uncontended Lock and Unlock cost about as much as a
// sync.Mutex's, a few nanoseconds. In a child, Lock is one round trip to
// the owner and Unlock a one-way message: tens of microseconds, where
// Python's multiprocessing.Lock, a semaphore in shared memory, costs a
// fraction of a microsecond in any process; keep a child's critical
// sections coarse (BenchmarkLock, and bench's Lock and LockChild).
type Lock struct {
	lockState
	r *remoteObj // in a child: the owner's lock
}

// lockState is a Lock in its owner.
type lockState struct {
	id atomic.Uint64

	// fast is lockFree or lockLocal while nothing else is going on, so
	// that this process locks and unlocks with one compare-and-swap, as a
	// sync.Mutex does; otherwise it is lockManaged, and the fields under
	// mu say who holds the lock.
	fast atomic.Int32

	mu      sync.Mutex
	held    bool
	holder  *sharedPeer // nil: this process
	waiters []*lockWaiter
	// lost is the report for the next acquirer: a holder died.
	lost error
}

// The states of lockState.fast.
const (
	lockFree    int32 = iota // unlocked, nobody waiting, nothing to report
	lockLocal                // held by this process, nobody waiting
	lockManaged              // see held, holder, waiters and lost
)

// manage moves the lock to lockManaged, so that the fields say who holds
// it. s.mu is held.
func (s *lockState) manage() {
	for {
		switch s.fast.Load() {
		case lockFree:
			if s.fast.CompareAndSwap(lockFree, lockManaged) {
				s.held, s.holder = false, nil
				return
			}
		case lockLocal:
			if s.fast.CompareAndSwap(lockLocal, lockManaged) {
				s.held, s.holder = true, nil
				return
			}
		default:
			return
		}
	}
}

// settle moves the lock back to a fast state when nobody waits, nothing
// is to be reported, and the holder, if any, is this process. s.mu is
// held.
func (s *lockState) settle() {
	if len(s.waiters) > 0 || s.lost != nil {
		return
	}
	switch {
	case !s.held:
		s.fast.Store(lockFree)
	case s.holder == nil:
		s.fast.Store(lockLocal)
	}
}

// lockWaiter is a Lock call waiting in the owner; ready is closed when the
// lock is handed to it, with err the report it gets.
type lockWaiter struct {
	p     *sharedPeer
	ready chan struct{}
	err   error
}

// NewLock returns an unlocked Lock. It is the analogue of Python's
// multiprocessing.Lock().
func NewLock() *Lock { return &Lock{} }

// Lock blocks until the lock is acquired or ctx is done. On success it
// returns nil, or an error wrapping [ErrLost] when the previous holder was
// a process that died holding the lock: the lock is held in both cases,
// and the caller must Unlock it. When ctx is done first, Lock returns
// context.Cause(ctx) and leaves the lock unchanged; a lock that is free,
// or handed over as ctx ends, may still be acquired, and then Lock
// succeeds.
//
// A call to Unlock "synchronizes before" the return of the Lock call that
// acquires the lock next, in any process.
func (l *Lock) Lock(ctx context.Context) error {
	if l.r != nil {
		_, cancelled, err := l.r.wait(ctx, sopLock, nil)
		if !cancelled && (err == nil || errors.Is(err, ErrLost)) {
			l.r.held.Store(1)
		}
		return err
	}
	if l.fast.CompareAndSwap(lockFree, lockLocal) {
		return nil
	}
	return l.lockAs(ctx, nil)
}

// TryLock tries to acquire the lock without blocking and reports whether it
// did. It does not report a previous holder's death (see [Lock.Lock]); the
// report is dropped. In a child, TryLock is a round trip to the owner.
func (l *Lock) TryLock() bool {
	if l.r != nil {
		m, err := l.r.call(sopTryLock, nil)
		if err != nil || len(m.Header) != 1 || m.Header[0] != 1 {
			return false
		}
		l.r.held.Store(1)
		return true
	}
	return l.fast.CompareAndSwap(lockFree, lockLocal) || l.tryLockAs(nil)
}

// Unlock releases the lock, handing it to the longest waiter if there is
// one. Unlocking a Lock that this process does not hold is a programmer
// error and panics with an "mp: ..." message, as [sync.Mutex.Unlock]
// does. In a child, Unlock is a one-way message: it returns at once, and
// the owner handles it before anything else the child sends afterwards.
func (l *Lock) Unlock() {
	if l.r != nil {
		if !l.r.held.CompareAndSwap(1, 0) {
			panic("mp: Unlock of unlocked Lock")
		}
		l.r.notify(sopUnlock)
		return
	}
	if l.fast.CompareAndSwap(lockLocal, lockFree) {
		return
	}
	if err := l.unlockAs(nil); err != nil {
		panic(err.Error())
	}
}

// lockBy acquires l for p, in l's owner or, for this process, through its
// proxy.
func (l *Lock) lockBy(ctx context.Context, p *sharedPeer) error {
	if l.r != nil {
		return l.Lock(ctx)
	}
	return l.lockAs(ctx, p)
}

// unlockBy releases l for p as lockBy acquires it.
func (l *Lock) unlockBy(p *sharedPeer) error {
	if l.r != nil {
		if l.r.held.Load() != 1 {
			return errors.New("mp: Unlock of unlocked Lock")
		}
		l.Unlock()
		return nil
	}
	return l.unlockAs(p)
}

// heldBy reports whether p holds l; for this process, through its proxy.
func (l *Lock) heldBy(p *sharedPeer) bool {
	if l.r != nil {
		return l.r.held.Load() == 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.fast.Load() {
	case lockFree:
		return false
	case lockLocal:
		return p == nil
	}
	return l.held && l.holder == p
}

// The operations of a Lock's protocol.
const (
	sopLock    byte = iota + 1 // blocking
	sopTryLock                 // reply header: [1] when acquired
	sopUnlock                  // one-way
)

func (s *lockState) lockAs(ctx context.Context, p *sharedPeer) error {
	if done := ctx.Done(); done != nil {
		select {
		case <-done:
			return context.Cause(ctx)
		default:
		}
	}
	s.mu.Lock()
	s.manage()
	if !s.held {
		if !p.alive() {
			s.settle()
			s.mu.Unlock()
			return errPeerGone
		}
		s.held, s.holder = true, p
		err := s.lost
		s.lost = nil
		s.settle()
		s.mu.Unlock()
		return err
	}
	w := &lockWaiter{p: p, ready: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-w.ready:
		// Handed over as ctx ended: this caller holds the lock.
		return w.err
	default:
	}
	if i := slices.Index(s.waiters, w); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
	}
	s.settle()
	return context.Cause(ctx)
}

// grabAs acquires the lock for p if it is free, as Lock does, with the
// report of a dead holder.
func (s *lockState) grabAs(p *sharedPeer) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manage()
	defer s.settle()
	if s.held || !p.alive() {
		return false, nil
	}
	s.held, s.holder = true, p
	err := s.lost
	s.lost = nil
	return true, err
}

func (s *lockState) tryLockAs(p *sharedPeer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manage()
	defer s.settle()
	if s.held || !p.alive() {
		return false
	}
	s.held, s.holder, s.lost = true, p, nil
	return true
}

func (s *lockState) unlockAs(p *sharedPeer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manage()
	defer s.settle()
	if !s.held {
		return errors.New("mp: Unlock of unlocked Lock")
	}
	if s.holder != p {
		return fmt.Errorf("mp: Unlock by process %d of a Lock that process %d holds", p.pid(), s.holder.pid())
	}
	s.handoff()
	return nil
}

// handoff gives the lock to the longest waiter whose process lives, or
// unlocks it. s.mu is held.
func (s *lockState) handoff() {
	for len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		if !w.p.alive() {
			continue
		}
		s.holder, w.err, s.lost = w.p, s.lost, nil
		close(w.ready)
		return
	}
	s.held, s.holder = false, nil
}

func (s *lockState) serve(r *sreq) {
	switch r.op {
	case sopLock:
		// A free lock is granted here, on the connection's reader, which
		// spares the round trip a goroutine's start.
		if ok, err := s.grabAs(r.p); ok {
			r.reply(wire.Message{}, err)
			return
		}
		r.block(func(ctx context.Context) (wire.Message, error) { return wire.Message{}, s.lockAs(ctx, r.p) })
	case sopTryLock:
		r.replyBool(s.tryLockAs(r.p))
	case sopUnlock:
		r.replyRelease(s.unlockAs(r.p))
	default:
		r.bad(fmt.Sprintf("unknown Lock operation %d", r.op))
	}
}

func (s *lockState) gone(p *sharedPeer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manage()
	defer s.settle()
	if s.held && s.holder == p {
		s.lost = &wrappedError{msg: fmt.Sprintf("mp: process %d died holding the Lock; what it guards may be inconsistent", p.pid()), err: ErrLost}
		s.handoff()
	}
}

// errPeerGone answers a request of a child whose connection has ended;
// nobody reads it.
var errPeerGone = errors.New("mp: process gone")

// GobEncode encodes the lock as a handle, so that a *Lock inside a task's
// argument reaches the child as the same lock. Programs do not call it
// themselves. It fails in a child for a lock received from the parent.
func (l *Lock) GobEncode() ([]byte, error) {
	if l.r != nil {
		return nil, errForwarded("Lock")
	}
	return encodeHandle(shareObj(&l.id, &l.lockState), "Lock"), nil
}

// GobDecode makes l, a new Lock, the child's side of a handle written by
// [Lock.GobEncode]. It fails outside a child process that mp started.
func (l *Lock) GobDecode(b []byte) error {
	r, err := decodeHandle(b, "Lock", "Lock")
	if err != nil {
		return err
	}
	l.r = r
	return nil
}
