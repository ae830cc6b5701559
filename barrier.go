package mp

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// Barrier makes a fixed number of parties, goroutines or processes, wait
// for each other: the analogue of Python's multiprocessing.Barrier (and
// threading.Barrier), without its action and timeout arguments (run the
// action where Wait returns 0; give Wait a ctx with a deadline). Passed
// inside a task's argument to a [Process] or a process pool, it is the
// same barrier in the child; the process that created it owns its state.
//
// A Barrier is reusable: once all parties have arrived it releases them
// together and fills again. It is robust where Python's is not: a child
// process that dies while waiting at it breaks it, so the others get
// [ErrBrokenBarrier] instead of hanging.
//
// A Barrier is safe for concurrent use by multiple goroutines. The zero
// value is not usable; use [NewBarrier]. A Barrier must not be copied
// after first use.
type Barrier struct {
	id      atomic.Uint64
	parties int

	mu     sync.Mutex
	count  int         // parties waiting in gen
	gen    *barrierGen // the parties waiting now
	broken error       // why the barrier is broken, until Reset

	r *remoteObj // in a child: the owner's barrier
}

// barrierGen is one filling of a barrier: ch is closed when its parties
// are released, with err set if the barrier broke instead.
type barrierGen struct {
	ch    chan struct{}
	err   error
	peers map[*sharedPeer]int // children waiting in it
}

func newBarrierGen() *barrierGen {
	return &barrierGen{ch: make(chan struct{}), peers: map[*sharedPeer]int{}}
}

// NewBarrier returns a barrier for parties parties. It is the analogue of
// Python's multiprocessing.Barrier(parties). It panics if parties < 1.
func NewBarrier(parties int) *Barrier {
	if parties < 1 {
		panic("mp: Barrier needs at least one party")
	}
	return &Barrier{parties: parties, gen: newBarrierGen()}
}

// The operations of a Barrier's protocol.
const (
	sopBarrierWait byte = iota + 1 // blocking; reply header: uvarint index
	sopAbort
	sopReset
	sopBarrierInfo // reply header: uvarint parties, uvarint waiting, [broken]
)

// Wait blocks until all parties have called Wait, the barrier breaks, or
// ctx is done. On success it returns the caller's arrival index, distinct
// for each party, from 0 for the first to parties-1 for the last, whose
// arrival releases them all. When the barrier is or becomes broken — it
// was aborted or reset, another party's ctx ended, or a process died
// waiting at it — Wait returns -1 and an error wrapping
// [ErrBrokenBarrier]. When ctx is done first, Wait breaks the barrier for
// the others, as Python's timeout does, and returns -1 and
// context.Cause(ctx).
//
// All the parties' calls before Wait "synchronize before" the return of
// any of their Wait calls.
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	if b.r != nil {
		m, _, err := b.r.wait(ctx, sopBarrierWait, nil)
		if err != nil {
			return -1, err
		}
		h := hdrReader{b: m.Header}
		i := h.int()
		if h.bad {
			return -1, errMalformedShared
		}
		return i, nil
	}
	return b.waitAs(ctx, nil)
}

// Abort breaks the barrier: the parties waiting, and those that call Wait
// until Reset, get [ErrBrokenBarrier]. It is the analogue of Python's
// Barrier.abort.
func (b *Barrier) Abort() {
	if b.r != nil {
		_, _ = b.r.call(sopAbort, nil)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.breakLocked(fmt.Errorf("%w: aborted", ErrBrokenBarrier))
}

// Reset returns the barrier to its empty state: the parties waiting get
// [ErrBrokenBarrier], and a broken barrier works again. It is the
// analogue of Python's Barrier.reset.
func (b *Barrier) Reset() {
	if b.r != nil {
		_, _ = b.r.call(sopReset, nil)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.count > 0 {
		b.gen.err = fmt.Errorf("%w: reset", ErrBrokenBarrier)
		close(b.gen.ch)
	}
	b.gen, b.count, b.broken = newBarrierGen(), 0, nil
}

// Parties returns the number of parties the barrier waits for: Python's
// Barrier.parties.
func (b *Barrier) Parties() int {
	p, _, _ := b.info()
	return p
}

// Waiting returns the number of parties waiting at the barrier now:
// Python's Barrier.n_waiting.
func (b *Barrier) Waiting() int {
	_, w, _ := b.info()
	return w
}

// Broken reports whether the barrier is broken: Python's Barrier.broken.
func (b *Barrier) Broken() bool {
	_, _, broken := b.info()
	return broken
}

// info returns the parties, the parties waiting, and whether the barrier
// is broken; in a child, in one round trip.
func (b *Barrier) info() (parties, waiting int, broken bool) {
	if b.r != nil {
		m, err := b.r.call(sopBarrierInfo, nil)
		if err != nil {
			return 0, 0, false
		}
		h := hdrReader{b: m.Header}
		parties, waiting = h.int(), h.int()
		return parties, waiting, h.byte() == 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.parties, b.count, b.broken != nil
}

// breakLocked breaks the barrier with err, releasing the parties waiting.
func (b *Barrier) breakLocked(err error) {
	if b.broken == nil {
		b.broken = err
	}
	if b.count > 0 {
		b.gen.err = err
		close(b.gen.ch)
		b.gen, b.count = newBarrierGen(), 0
	}
}

func (b *Barrier) waitAs(ctx context.Context, p *sharedPeer) (int, error) {
	b.mu.Lock()
	if b.broken != nil {
		err := b.broken
		b.mu.Unlock()
		return -1, err
	}
	if err := ctx.Err(); err != nil {
		b.breakLocked(fmt.Errorf("%w: a party's context ended", ErrBrokenBarrier))
		b.mu.Unlock()
		return -1, context.Cause(ctx)
	}
	g, i := b.gen, b.count
	b.count++
	if b.count == b.parties {
		b.gen, b.count = newBarrierGen(), 0
		close(g.ch)
		b.mu.Unlock()
		return i, nil
	}
	if p != nil {
		g.peers[p]++
	}
	b.mu.Unlock()
	select {
	case <-g.ch:
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p != nil {
		if g.peers[p]--; g.peers[p] == 0 {
			delete(g.peers, p)
		}
	}
	select {
	case <-g.ch:
		if g.err != nil {
			return -1, g.err
		}
		return i, nil
	default:
	}
	if !p.alive() {
		b.breakLocked(fmt.Errorf("%w: process %d died waiting at it", ErrBrokenBarrier, p.pid()))
		return -1, errPeerGone
	}
	b.breakLocked(fmt.Errorf("%w: a party's context ended", ErrBrokenBarrier))
	return -1, context.Cause(ctx)
}

func (b *Barrier) serve(r *sreq) {
	switch r.op {
	case sopBarrierWait:
		r.block(func(ctx context.Context) (wire.Message, error) {
			i, err := b.waitAs(ctx, r.p)
			if err != nil {
				return wire.Message{}, err
			}
			return wire.Message{Header: binary.AppendUvarint(nil, uint64(i))}, nil
		})
	case sopAbort:
		b.Abort()
		r.reply(wire.Message{}, nil)
	case sopReset:
		b.Reset()
		r.reply(wire.Message{}, nil)
	case sopBarrierInfo:
		p, w, broken := b.info()
		h := binary.AppendUvarint(nil, uint64(p))
		h = binary.AppendUvarint(h, uint64(w))
		r.reply(wire.Message{Header: append(h, byte(boolField(broken)))}, nil)
	default:
		r.bad(fmt.Sprintf("unknown Barrier operation %d", r.op))
	}
}

// gone breaks the barrier if p was waiting at it. (Its waiting request
// would break it too, when its context ends with the connection; this
// does not wait for that goroutine.)
func (b *Barrier) gone(p *sharedPeer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen.peers[p] > 0 {
		b.breakLocked(fmt.Errorf("%w: process %d died waiting at it", ErrBrokenBarrier, p.pid()))
	}
}

// GobEncode encodes the barrier as a handle, so that a *Barrier inside a
// task's argument reaches the child as the same barrier. Programs do not
// call it themselves. It fails in a child for a barrier received from the
// parent.
func (b *Barrier) GobEncode() ([]byte, error) {
	if b.r != nil {
		return nil, errForwarded("Barrier")
	}
	if b.gen == nil {
		return nil, fmt.Errorf("mp: a zero Barrier cannot be sent; use NewBarrier")
	}
	return encodeHandle(shareObj(&b.id, b), "Barrier"), nil
}

// GobDecode makes b, a new Barrier, the child's side of a handle written
// by [Barrier.GobEncode]. It fails outside a child process that mp
// started.
func (b *Barrier) GobDecode(data []byte) error {
	r, err := decodeHandle(data, "Barrier", "Barrier")
	if err != nil {
		return err
	}
	b.r = r
	return nil
}

func init() {
	// ErrBrokenBarrier keeps its identity when it crosses from a child.
	sentinels = append(sentinels, ErrBrokenBarrier)
}
