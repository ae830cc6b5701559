package mp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"

	"golang.org/x/sync/semaphore"
)

// Semaphore is a weighted semaphore that works between goroutines and
// between processes: the analogue of Python's
// multiprocessing.BoundedSemaphore, with the method set of
// [golang.org/x/sync/semaphore.Weighted], which it uses underneath. Passed
// inside a task's argument to a [Process] or a process pool, it is the
// same semaphore in the child; the process that created it owns its
// state.
//
// It is bounded: each process may release only the units it holds, and
// releasing more panics. It is robust: when a child dies holding units,
// they are released, and the next Acquire that succeeds returns an error
// wrapping [ErrLost] while holding its units.
//
// A Semaphore is safe for concurrent use by multiple goroutines. The zero
// value is not usable; use [NewSemaphore]. A Semaphore must not be copied
// after first use.
type Semaphore struct {
	id   atomic.Uint64
	size int64
	w    *semaphore.Weighted

	mu   sync.Mutex
	held map[*sharedPeer]int64 // units held, by process; nil is this one
	lost error                 // the report for the next acquirer

	r *remoteObj // in a child: the owner's semaphore
}

// NewSemaphore returns a semaphore of n units. It is the analogue of
// Python's multiprocessing.BoundedSemaphore(n). It panics if n is
// negative.
func NewSemaphore(n int64) *Semaphore {
	if n < 0 {
		panic("mp: negative Semaphore size")
	}
	return &Semaphore{size: n, w: semaphore.NewWeighted(n), held: map[*sharedPeer]int64{}}
}

// Acquire acquires n units, blocking until they are available or ctx is
// done. On success it returns nil, or an error wrapping [ErrLost] when
// units had been released because a process died holding them: the units
// are held in both cases. On failure it returns ctx.Err() and leaves the
// semaphore unchanged. Waiters are served in arrival order, as
// semaphore.Weighted serves them. In a child, Acquire is one round trip to
// the owner.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if s.r != nil {
		_, cancelled, err := s.r.wait(ctx, sopAcquire, nil, uint64(n))
		if !cancelled && (err == nil || errors.Is(err, ErrLost)) {
			s.r.held.Add(n)
		}
		return err
	}
	return s.acquireAs(ctx, nil, n)
}

// TryAcquire acquires n units without blocking and reports whether it
// did. It does not report units lost with a dead process: the report is
// dropped. In a child,
// TryAcquire is a round trip to the owner.
func (s *Semaphore) TryAcquire(n int64) bool {
	if s.r != nil {
		m, err := s.r.call(sopTryAcquire, nil, uint64(n))
		if err != nil || len(m.Header) != 1 || m.Header[0] != 1 {
			return false
		}
		s.r.held.Add(n)
		return true
	}
	return s.tryAcquireAs(nil, n)
}

// Release releases n units. Releasing more units than this process holds
// is a programmer error and panics with an "mp: ..." message, as
// semaphore.Weighted's Release does. In a child, Release is a one-way
// message, handled by the owner before anything the child sends
// afterwards.
func (s *Semaphore) Release(n int64) {
	if s.r != nil {
		for {
			h := s.r.held.Load()
			if n < 0 || h < n {
				panic("mp: Semaphore released more than held")
			}
			if s.r.held.CompareAndSwap(h, h-n) {
				break
			}
		}
		s.r.notify(sopRelease, uint64(n))
		return
	}
	if err := s.releaseAs(nil, n); err != nil {
		panic(err.Error())
	}
}

// The operations of a Semaphore's protocol.
const (
	sopAcquire    byte = iota + 1 // [uvarint n], blocking
	sopTryAcquire                 // [uvarint n]; reply header: [1] when acquired
	sopRelease                    // [uvarint n], one-way
)

func (s *Semaphore) acquireAs(ctx context.Context, p *sharedPeer, n int64) error {
	if err := s.w.Acquire(ctx, n); err != nil {
		return err
	}
	return s.record(p, n, true)
}

func (s *Semaphore) tryAcquireAs(p *sharedPeer, n int64) bool {
	if !s.w.TryAcquire(n) {
		return false
	}
	return s.record(p, n, false) == nil
}

// record counts n units just acquired for p, and takes the report of
// lost units: it returns it if tell is set, and drops it otherwise. A p whose connection ended gets nothing: the
// units go back.
func (s *Semaphore) record(p *sharedPeer, n int64, tell bool) error {
	s.mu.Lock()
	if !p.alive() {
		s.mu.Unlock()
		s.w.Release(n)
		return errPeerGone
	}
	s.held[p] += n
	err := s.lost
	s.lost = nil
	s.mu.Unlock()
	if !tell {
		return nil
	}
	return err
}

func (s *Semaphore) releaseAs(p *sharedPeer, n int64) error {
	s.mu.Lock()
	if n < 0 || s.held[p] < n {
		s.mu.Unlock()
		if p == nil {
			return errors.New("mp: Semaphore released more than held")
		}
		return fmt.Errorf("mp: process %d released %d Semaphore units but holds %d", p.pid(), n, s.held[p])
	}
	if s.held[p] -= n; s.held[p] == 0 {
		delete(s.held, p)
	}
	s.mu.Unlock()
	s.w.Release(n)
	return nil
}

func (s *Semaphore) serve(r *sreq) {
	v := r.h.uvarint()
	if r.h.bad || v > 1<<62 {
		r.bad("a Semaphore request without a count")
		return
	}
	n := int64(v)
	switch r.op {
	case sopAcquire:
		// Free units are granted here, on the connection's reader.
		if s.w.TryAcquire(n) {
			r.reply(wire.Message{}, s.record(r.p, n, true))
			return
		}
		r.block(func(ctx context.Context) (wire.Message, error) { return wire.Message{}, s.acquireAs(ctx, r.p, n) })
	case sopTryAcquire:
		r.replyBool(s.tryAcquireAs(r.p, n))
	case sopRelease:
		r.replyRelease(s.releaseAs(r.p, n))
	default:
		r.bad(fmt.Sprintf("unknown Semaphore operation %d", r.op))
	}
}

func (s *Semaphore) gone(p *sharedPeer) {
	s.mu.Lock()
	n := s.held[p]
	delete(s.held, p)
	if n > 0 {
		s.lost = &wrappedError{msg: fmt.Sprintf("mp: process %d died holding %d Semaphore units", p.pid(), n), err: ErrLost}
	}
	s.mu.Unlock()
	if n > 0 {
		s.w.Release(n)
	}
}

// GobEncode encodes the semaphore as a handle, so that a *Semaphore inside
// a task's argument reaches the child as the same semaphore. Programs do
// not call it themselves. It fails in a child for a semaphore received
// from the parent.
func (s *Semaphore) GobEncode() ([]byte, error) {
	if s.r != nil {
		return nil, errForwarded("Semaphore")
	}
	if s.w == nil {
		return nil, errors.New("mp: a zero Semaphore cannot be sent; use NewSemaphore")
	}
	return encodeHandle(shareObj(&s.id, s), "Semaphore"), nil
}

// GobDecode makes s, a new Semaphore, the child's side of a handle written
// by [Semaphore.GobEncode]. It fails outside a child process that mp
// started.
func (s *Semaphore) GobDecode(b []byte) error {
	r, err := decodeHandle(b, "Semaphore", "Semaphore")
	if err != nil {
		return err
	}
	s.r = r
	return nil
}
