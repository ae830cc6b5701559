package mp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/mpgo/mp/internal/wire"
)

// xtable holds the queues this process owns and has handed to children,
// by handle number. An entry stays for the life of the process: a child may
// start using its handle at any time.
var xtable = struct {
	mu   sync.Mutex
	next uint64
	byID map[uint64]xowner
}{byID: map[uint64]xowner{}}

// xstate is the owner's side of a shared queue: the local queue, the
// items that dead children held and that wait to be delivered again, and
// the items lost for good.
type xstate[T any] struct {
	id       uint64
	q        *localQueue[T] // the queue's own state, in its core
	codec    codec[T]
	joinable bool

	mu        sync.Mutex
	redo      []heldItem[T] // items back from dead children, delivered first
	kick      chan struct{} // closed and replaced when redo grows
	closedNow bool          // CloseNow was called
	lost      int           // items lost since the last Join reported them
	lostPids  map[int]bool  // the processes that held them
	// refused counts the streamed Puts refused since the last Join
	// reported them, refusedPids the children that made them, and
	// refusedErr is why the first was refused.
	refused     int
	refusedPids map[int]bool
	refusedErr  error
	holders     map[*holder[T]]struct{} // of live children: told when the queue closes
}

// heldItem is an item and the number of times it has been delivered.
type heldItem[T any] struct {
	v T
	n int
}

// share registers c as shared, once, and returns its state; a queue whose
// state another process owns cannot be shared: it returns
// errHandleForwarded.
func (c *core[T]) share(joinable bool) (*xstate[T], error) {
	if x, err := c.shared(); x != nil || err != nil {
		return x, err
	}
	xtable.mu.Lock()
	defer xtable.mu.Unlock()
	if x, err := c.shared(); x != nil || err != nil {
		return x, err
	}
	x := &xstate[T]{q: &c.local, codec: codecFor[T]().as(roleItem), joinable: joinable, kick: make(chan struct{}),
		holders: map[*holder[T]]struct{}{}}
	xtable.next++
	x.id = xtable.next
	xtable.byID[x.id] = x
	var impl queueImpl[T] = x
	c.remote.Store(&impl)
	return x, nil
}

// shared returns c's state if c is shared already, or errHandleForwarded
// if c is a child's proxy.
func (c *core[T]) shared() (*xstate[T], error) {
	r := c.remote.Load()
	if r == nil {
		return nil, nil
	}
	if x, ok := (*r).(*xstate[T]); ok {
		return x, nil
	}
	return nil, errHandleForwarded
}

// checkEncodable reports whether v can cross to a child, so that a Put of
// a shared queue fails in the caller rather than in a feeder later.
func (x *xstate[T]) checkEncodable(v T) (err error) {
	// The item's own marshalling methods run here, in the caller of Put:
	// their panic fails that Put, as any other encoding error does.
	defer recoverHook(&err, "encoding", x.codec.typ, "the item")
	size, err := x.codec.encodedSize(v)
	if err != nil {
		return err
	}
	if limit := wire.DefaultMaxFrame - 1024; size > limit {
		return wire.FrameTooLarge(size, limit)
	}
	return nil
}

// put checks first that v can cross, so that an item that cannot fails in
// the Put that brought it, while the caller can still act, rather than in
// a feeder later, where it could only be counted lost.
func (x *xstate[T]) put(ctx context.Context, v T, block bool) error {
	if err := x.checkEncodable(v); err != nil {
		return err
	}
	return x.q.put(ctx, v, block)
}

func (x *xstate[T]) get(ctx context.Context, block bool) (T, error) {
	v, _, err := x.take(ctx, block)
	return v, err
}

// take removes the next item: one back from a dead child first, then the
// queue's own. n is the number of deliveries the item has had. Items that
// come back were put before anything still in the queue, so taking them
// first keeps the order as close to first in, first out as redelivery
// allows.
func (x *xstate[T]) take(ctx context.Context, block bool) (T, int, error) {
	var zero T
	if _, err := doneChan(ctx, block); err != nil {
		return zero, 0, err
	}
	for {
		x.mu.Lock()
		if len(x.redo) > 0 {
			it := x.redo[0]
			x.redo[0] = heldItem[T]{}
			x.redo = x.redo[1:]
			x.mu.Unlock()
			return it.v, it.n, nil
		}
		kick := x.kick
		x.mu.Unlock()
		v, err := x.q.get(ctx, false)
		if err == nil || !block || !errors.Is(err, ErrEmpty) {
			return v, 0, err
		}
		// Wait for an item, or for a redelivered one. The local queue does
		// not know redo, so the wait runs under a context that a kick
		// (requeue) cancels; the goroutine is paid only by a blocking take
		// on an empty shared queue, where a process waits anyway.
		kctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-kick:
				cancel()
			case <-kctx.Done():
			}
		}()
		v, err = x.q.get(kctx, true)
		kicked := err != nil && ctx.Err() == nil && kctx.Err() != nil
		cancel()
		if err == nil {
			return v, 0, nil
		}
		if !kicked {
			if ctx.Err() != nil {
				return zero, 0, context.Cause(ctx)
			}
			return zero, 0, err
		}
	}
}

func (x *xstate[T]) taskDone() error { return x.q.taskDone() }

// len counts the items back from dead children too: they wait to be got.
func (x *xstate[T]) len() int {
	x.mu.Lock()
	n := len(x.redo)
	x.mu.Unlock()
	return n + x.q.len()
}

// close closes the local queue, which ends the feeders' waits (they tell
// their children xopClosed once the queue is drained), and with immediate
// also discards the items back from dead children, and those that come
// back later.
func (x *xstate[T]) close(immediate bool) {
	x.q.close(immediate)
	x.mu.Lock()
	cns := make([]*wire.Conn, 0, len(x.holders))
	for h := range x.holders {
		cns = append(cns, h.b.cn)
	}
	n := 0
	if immediate {
		n = len(x.redo)
		x.redo = nil
		x.closedNow = true
	}
	x.mu.Unlock()
	x.finish(n)
	// Tell the children, so that their Puts fail at once rather than
	// after the item has crossed. Each notification is sent from a
	// goroutine of its own, which ends once it is queued on the connection
	// or the connection has ended: Close must not wait for a child that
	// does not read.
	hdr := xheader(xopPutsClosed, x.id)
	for _, cn := range cns {
		go func() { _ = cn.Notify(serviceQueueChild, wire.Message{Header: hdr}) }()
	}
}

// finish marks n items done without a TaskDone: discarded or lost. A
// JoinableQueue's Join must not wait for an item nobody can finish; a lost
// one is reported by that Join instead (ErrLost).
func (x *xstate[T]) finish(n int) {
	if n > 0 && x.joinable {
		x.q.taskDoneN(n)
	}
}

// join waits as the local queue's Join does, then reports, once, what was
// lost since the last report: items whose holders died too often, and
// streamed Puts the queue refused. Both were counted done by finish, so
// that the wait could end; the error is how the caller learns of them.
func (x *xstate[T]) join(ctx context.Context) error {
	if err := x.q.join(ctx); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var msg []string
	if x.lost > 0 {
		msg = append(msg, fmt.Sprintf("%d items were not finished: process %s died holding them after they had been delivered %d times", x.lost, pidList(x.lostPids), deliveryLimit))
	}
	var err error
	switch {
	case x.refused > 0:
		msg = append(msg, fmt.Sprintf("%d items that process %s put never reached the queue, which refused them after the child's Put had returned", x.refused, pidList(x.refusedPids)))
		err = fmt.Errorf("%w: %s: %w", ErrLost, strings.Join(msg, "; "), x.refusedErr)
	case x.lost > 0:
		err = fmt.Errorf("%w: %s", ErrLost, msg[0])
	}
	x.lost, x.lostPids = 0, nil
	x.refused, x.refusedPids, x.refusedErr = 0, nil, nil
	return err
}

// pidList formats a set of process IDs in increasing order.
func pidList(set map[int]bool) string {
	pids := slices.Sorted(maps.Keys(set))
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// refuse counts an item of a streamed Put that the queue refused, with
// err, after the child's Put had returned nil, so that Join reports it.
// Only a JoinableQueue has a Join to report it to; the child hears of it
// in either case.
func (x *xstate[T]) refuse(pid int, err error) {
	if !x.joinable {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refused++
	if x.refusedPids == nil {
		x.refusedPids = map[int]bool{}
	}
	x.refusedPids[pid] = true
	if x.refusedErr == nil {
		x.refusedErr = err
	}
}

// requeue takes back the items a child held: each is delivered again
// unless it has been delivered deliveryLimit times, in which case it is
// lost. pid is the child, for the error Join reports. count tells a
// child's death (the delivery counts: an item that kills its consumers
// must not go round forever) from a hand-back of items the child never
// got (it does not). After CloseNow the items are discarded.
func (x *xstate[T]) requeue(items []heldItem[T], pid int, count bool) {
	if len(items) == 0 {
		return
	}
	lost, dropped := 0, 0
	x.mu.Lock()
	for _, it := range items {
		switch {
		case x.closedNow:
			dropped++
		case count && it.n >= deliveryLimit:
			lost++
		default:
			if !count {
				it.n--
			}
			x.redo = append(x.redo, it)
		}
	}
	if lost > 0 {
		x.lost += lost
		if x.lostPids == nil {
			x.lostPids = map[int]bool{}
		}
		x.lostPids[pid] = true
	}
	// Wake the takes waiting on the local queue: the items in redo are
	// for them too.
	close(x.kick)
	x.kick = make(chan struct{})
	x.mu.Unlock()
	x.finish(lost + dropped)
}

// newHolder starts the state of the queue on a new child connection. The
// holder is registered so that Close can tell the child at once.
func (x *xstate[T]) newHolder(b *broker) xholder {
	h := &holder[T]{x: x, b: b, wake: make(chan struct{}, 1)}
	x.mu.Lock()
	x.holders[h] = struct{}{}
	x.mu.Unlock()
	return h
}
