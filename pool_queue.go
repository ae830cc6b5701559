package mp

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// The queue of a Pool.
//
// A buffered channel would do, but every send and receive takes the
// channel's lock, and with one submitter and a few workers that lock is
// where a trivial task spends most of its time. The queue is instead a
// bounded ring in the manner of Dmitry Vyukov's MPMC queue: each slot
// carries a sequence number that says whose turn it is, and a submitter or
// a worker claims a position with one compare-and-swap, without a lock.
//
// The ring never blocks by itself; waiting is layered on top:
//   - A worker that finds the queue empty counts itself among the
//     sleepers of Pool.idle and parks on the Pool.wake channel. A
//     submitter that queues a unit while there are sleepers and no waking
//     worker sends one token on wake (see Pool.idle). The worker counts
//     itself before it looks at the queue a last time and the submitter
//     publishes the unit before it looks at idle, so one of them sees the
//     other: no wake-up is lost.
//   - A submitter that finds the queue full yields a while, giving the
//     workers a chance to make room (see roomYields), then registers a
//     channel of its own in Pool.roomWaiters, tries again, and parks on
//     that channel, on its context and on the pool's; every worker that
//     takes a unit while someone waits wakes them all. The same ordering
//     of registering before trying again keeps this wake-up from being
//     lost.
//   - Closing the queue sets closedBit in the tail, which fails every
//     later push; the workers exit once they have taken every unit below
//     that tail. Close lets the submitters that wait for room through
//     first: they count themselves in Pool.gate, and the last of them to
//     leave closes the queue.

// taskQueue is a bounded multi-producer multi-consumer ring of units.
type taskQueue struct {
	// tail is the next position to fill, with closedBit once closed.
	// Submitters write it and workers write head, so each has a cache
	// line of its own.
	tail atomic.Uint64
	_    [56]byte
	head atomic.Uint64 // the next position to take
	_    [56]byte

	slots []queueSlot
	size  uint64
	// pow2 reports whether size is a power of two, which spares a
	// division per operation.
	pow2 bool
}

// queueSlot is one slot of a taskQueue. Its sequence number is 2*pos when
// the slot is free for position pos, and 2*pos+1 once the unit of position
// pos is in it; taking that unit makes it 2*(pos+size), free for the next
// lap. The doubling tells a full slot from a free one even in a ring of
// one slot.
type queueSlot struct {
	seq atomic.Uint64
	u   unit
}

// closedBit marks the tail of a closed queue.
const closedBit = 1 << 63

// pushResult is the outcome of taskQueue.push.
type pushResult int

const (
	pushed pushResult = iota
	full
	closed
)

// init makes q an empty queue of size slots.
func (q *taskQueue) init(size int) {
	q.slots, q.size, q.pow2 = make([]queueSlot, size), uint64(size), size&(size-1) == 0
	for i := range q.slots {
		q.slots[i].seq.Store(2 * uint64(i))
	}
}

func (q *taskQueue) slot(pos uint64) *queueSlot {
	if q.pow2 {
		return &q.slots[pos&(q.size-1)]
	}
	return &q.slots[pos%q.size]
}

// push appends u unless the queue is full or closed.
func (q *taskQueue) push(u unit) pushResult {
	pos := q.tail.Load()
	for {
		if pos&closedBit != 0 {
			return closed
		}
		s := q.slot(pos)
		switch d := int64(s.seq.Load() - 2*pos); {
		case d == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				s.u = u
				s.seq.Store(2*pos + 1)
				return pushed
			}
		case d < 0:
			// The slot still holds the unit of the previous lap.
			return full
		}
		// Another submitter took pos, or the queue was closed.
		pos = q.tail.Load()
	}
}

// pop removes the first unit, if one has been published.
func (q *taskQueue) pop() (unit, bool) {
	pos := q.head.Load()
	for {
		s := q.slot(pos)
		switch d := int64(s.seq.Load() - (2*pos + 1)); {
		case d == 0:
			if q.head.CompareAndSwap(pos, pos+1) {
				u := s.u
				s.u = nil
				s.seq.Store(2 * (pos + q.size))
				return u, true
			}
		case d < 0:
			// Empty, or the submitter of pos has not published it yet.
			return nil, false
		}
		// Another worker took pos.
		pos = q.head.Load()
	}
}

// close makes every later push fail.
func (q *taskQueue) close() { q.tail.Or(closedBit) }

// drained reports whether the queue is closed and every unit in it taken.
func (q *taskQueue) drained() bool {
	t := q.tail.Load()
	return t&closedBit != 0 && q.head.Load() == t&^closedBit
}

// len returns the number of units queued, or being queued, now.
func (q *taskQueue) len() int {
	h := q.head.Load()
	t := q.tail.Load() &^ closedBit
	if t < h {
		return 0
	}
	return int(t - h)
}

// takeResult is the outcome of Pool.take.
type takeResult int

const (
	took takeResult = iota
	empty
	exhausted // closed and drained: no unit will ever come
)

// take removes the next unit of the queue without waiting, and wakes the
// submitters waiting for room.
func (p *Pool) take() (unit, takeResult) {
	u, ok := p.q.pop()
	if !ok {
		if p.q.drained() {
			return nil, exhausted
		}
		return nil, empty
	}
	if p.roomWanted.Load() {
		p.wakeSubmitters()
	}
	if p.gate.Load()&gateClosing != 0 && p.q.drained() {
		// This was the last unit of a closed queue. A worker that went to
		// sleep after the queue closed, while this unit was still on its
		// way, saw it coming and was not woken by the close: it must
		// learn now that nothing else will come.
		p.wakeAll()
	}
	return u, took
}

// Pool.idle counts the idle workers: in its high half the waking ones,
// which a submitter has sent a token and which will look at the queue
// without being woken again, and in its low half the sleepers, which wait
// for a token on Pool.wake.
//
// A submitter that queues a unit wakes a sleeper only when no worker is
// waking: the waking worker takes the unit. A waking worker that takes a
// unit and leaves no waking worker behind wakes a sleeper if more units
// are queued. This is how the Go scheduler wakes its threads: a burst of
// submissions wakes as many workers as it needs, one after the other,
// instead of paying a wake-up per unit.
//
// An idle worker parks at once rather than spinning or yielding first: on
// a machine with few processors, a worker that yields keeps taking units
// as soon as they come, one by one, and the submitter and the workers
// then fight over the same cache lines for every unit. A parked worker
// lets the queue fill, and then works through it at a distance.
const (
	waking      = 1 << 32
	sleeperMask = waking - 1
)

// await waits for the next unit of the queue. It reports false once the
// queue is closed and drained.
func (p *Pool) await() (unit, bool) {
	p.sleep()
	for {
		// Look at the queue a last time. A submitter queues its unit
		// before it looks at idle, so either the worker sees the unit or
		// the submitter sees the sleeper.
		if u, r := p.take(); r != empty {
			p.unsleep()
			if r == took {
				p.wakeIfQueued()
			}
			return u, r == took
		}
		<-p.wake
		// The waker counted this worker as waking.
		if u, r := p.take(); r != empty {
			p.stopWaking(r == took)
			return u, r == took
		}
		p.idle.Add(1 - waking)
	}
}

// stopWaking is called by a waking worker that has looked at the queue,
// having taken a unit if took. Submitters did not wake anyone while it was
// waking, so if units are left and no other worker is waking, it wakes a
// sleeper for them.
func (p *Pool) stopWaking(took bool) {
	p.idle.Add(-waking)
	if took {
		p.wakeIfQueued()
	}
}

// wakeIfQueued wakes a sleeper if units are queued and no worker is
// waking.
func (p *Pool) wakeIfQueued() {
	if v := p.idle.Load(); v != 0 && v < waking && p.q.len() > 0 {
		p.wakeSleeper()
	}
}

// sleep counts the calling worker among the sleepers, which a unit queued
// while no worker is waking wakes with a token on p.wake; the token makes
// it waking. The worker must look at the queue after sleep and before it
// waits for the token.
func (p *Pool) sleep() { p.idle.Add(1) }

// unsleep withdraws a sleeper that did not wait for its token. A submitter
// may have counted it out already and sent a token: the token, and the
// waking worker it counts, then go to the next worker that sleeps, which
// is harmless.
func (p *Pool) unsleep() {
	for v := p.idle.Load(); v&sleeperMask != 0; v = p.idle.Load() {
		if p.idle.CompareAndSwap(v, v-1) {
			return
		}
	}
}

// wakeWorker wakes a sleeper, after a unit was queued, if no worker is
// waking.
func (p *Pool) wakeWorker() {
	if v := p.idle.Load(); v != 0 && v < waking {
		p.wakeSleeper()
	}
}

// wakeSleeper turns one sleeper into a waking worker and sends it a
// token. It reports false if there was no sleeper.
func (p *Pool) wakeSleeper() bool {
	for v := p.idle.Load(); v&sleeperMask != 0; v = p.idle.Load() {
		if p.idle.CompareAndSwap(v, v-1+waking) {
			select {
			case p.wake <- struct{}{}:
			default:
				// wake is full, so nobody waits on it: every worker
				// that parks will find a token, waking for it.
				p.idle.Add(-waking)
			}
			return true
		}
	}
	return false
}

// roomYields is how many times a submitter that finds the queue full
// yields its processor, waiting for the workers to empty half of it,
// before it takes what room there is or parks.
const roomYields = 64

// submit puts u on the queue. It blocks while the queue is full, until
// there is room, the pool is terminated, or ctx is done. It returns
// ErrClosed if the pool no longer accepts units.
func (p *Pool) submit(ctx context.Context, u unit) error {
	if p.gate.Load()&gateClosing != 0 {
		return ErrClosed
	}
	switch p.q.push(u) {
	case pushed:
		p.wakeWorker()
		return nil
	case closed:
		return ErrClosed
	}
	return p.submitFull(ctx, u)
}

// gateClosing is the bit of Pool.gate that Close sets; the rest of gate
// counts the submitters waiting for room, in steps of gateWaiter.
const (
	gateClosing = 1
	gateWaiter  = 2
)

// submitFull is submit once the queue was found full.
func (p *Pool) submitFull(ctx context.Context, u unit) error {
	if p.gate.Add(gateWaiter)&gateClosing != 0 {
		// Close came first: this submission was not waiting yet.
		p.leaveGate()
		return ErrClosed
	}
	// Until this submission leaves the gate, Close leaves the queue open.
	defer p.leaveGate()
	for {
		if p.ctx.Err() != nil {
			return p.terminatedSubmit(ctx, u)
		}
		// Give the workers a chance to make room before parking, and let
		// them empty half the queue if they can do so quickly: the
		// submitter then fills it while they work at the other end,
		// instead of taking each slot as soon as it is freed, which would
		// make both sides fight over the same cache lines.
		for range roomYields {
			runtime.Gosched()
			if p.q.len() <= len(p.q.slots)/2 {
				break
			}
		}
		if p.q.push(u) == pushed {
			p.wakeWorker()
			return nil
		}
		ch := p.awaitRoom()
		if p.q.push(u) == pushed {
			p.cancelRoom(ch)
			p.wakeWorker()
			return nil
		}
		select {
		case <-ch:
			p.freeRoom(ch)
		case <-p.ctx.Done():
			p.cancelRoom(ch)
			return p.terminatedSubmit(ctx, u)
		case <-ctx.Done():
			p.cancelRoom(ch)
			return context.Cause(ctx)
		}
	}
}

// terminatedSubmit ends a submission that Terminate caught waiting for
// room. It fails as the units Terminate took from the queue do: a caller
// that cannot give up (Go) sees its task fail, reported by Join; the
// others get ErrTerminated and fail the unit themselves.
func (p *Pool) terminatedSubmit(ctx context.Context, u unit) error {
	if ctx.Done() == nil {
		p.drained.Add(1)
		u.fail(p, ErrTerminated)
		return nil
	}
	return ErrTerminated
}

// leaveGate ends a submission that waited for room, closing the queue if
// it was the last one Close let through.
func (p *Pool) leaveGate() {
	if p.gate.Add(-gateWaiter) == gateClosing {
		p.closeQueue()
	}
}

// closeQueue closes the queue and wakes every sleeping worker, so that
// they exit once it is drained.
func (p *Pool) closeQueue() {
	p.q.close()
	p.wakeAll()
}

// wakeAll wakes every sleeping worker.
func (p *Pool) wakeAll() {
	for p.wakeSleeper() {
	}
}

// awaitRoom registers the calling submitter for a token on the returned
// channel once a worker takes a unit. The submitter must try the queue
// again after awaitRoom and before it waits.
func (p *Pool) awaitRoom() chan struct{} {
	p.roomMu.Lock()
	defer p.roomMu.Unlock()
	var ch chan struct{}
	if n := len(p.roomFree); n > 0 {
		ch = p.roomFree[n-1]
		p.roomFree = p.roomFree[:n-1]
	} else {
		ch = make(chan struct{}, 1)
	}
	p.roomWaiters = append(p.roomWaiters, ch)
	p.roomWanted.Store(true)
	return ch
}

// cancelRoom withdraws a registration of awaitRoom that did not wait for
// its token.
func (p *Pool) cancelRoom(ch chan struct{}) {
	p.roomMu.Lock()
	defer p.roomMu.Unlock()
	if i := slices.Index(p.roomWaiters, ch); i >= 0 {
		p.roomWaiters = slices.Delete(p.roomWaiters, i, i+1)
		p.roomWanted.Store(len(p.roomWaiters) > 0)
	} else {
		// A worker sent the token, under roomMu.
		<-ch
	}
	p.roomFree = append(p.roomFree, ch)
}

// freeRoom keeps a channel whose token was received for later waits, so
// that waiting for room allocates nothing in the long run.
func (p *Pool) freeRoom(ch chan struct{}) {
	p.roomMu.Lock()
	p.roomFree = append(p.roomFree, ch)
	p.roomMu.Unlock()
}

// wakeSubmitters sends a token to every submitter waiting for room.
func (p *Pool) wakeSubmitters() {
	p.roomMu.Lock()
	defer p.roomMu.Unlock()
	for _, ch := range p.roomWaiters {
		ch <- struct{}{}
	}
	clear(p.roomWaiters)
	p.roomWaiters = p.roomWaiters[:0]
	p.roomWanted.Store(false)
}

// roomState is the part of a Pool that submitters waiting for room share
// with the workers.
type roomState struct {
	// roomWanted reports whether roomWaiters is not empty, so that a
	// worker taking a unit need not lock roomMu to know.
	roomWanted atomic.Bool
	roomMu     sync.Mutex
	// roomWaiters are the channels of the submitters waiting for room,
	// each of capacity one and sent one token.
	roomWaiters []chan struct{}
	roomFree    []chan struct{} // channels for later waits
}
