package mp

import (
	"context"
	"sync"
	"sync/atomic"
)

// localQueue is a queue whose state lives in this process: a ring buffer
// (a heap for a priority queue) under a mutex, with FIFO lists of blocked
// putters and getters. An operation that must wait parks on its own
// waiter's channel, so that a wake-up goes to exactly one goroutine (no
// broadcast storm) and cancellation needs no extra goroutine. Items are
// handed to a waiting getter directly, as the runtime does for channels,
// so that a woken getter never has to compete for the item again.
//
// Invariants: getters wait only while the buffer is empty, putters only
// while it is full; neither waits once closed.
type localQueue[T any] struct {
	mu      sync.Mutex
	buf     []T // ring; len(buf) is zero or a power of two
	head    int // index of the front item
	n       int // number of items in buf
	maxsize int // <= 0: unbounded
	closed  bool
	order   order
	less    func(a, b T) bool // for priority: buf[:n] is a heap, head is 0

	// unfinished counts the items put and not yet marked done. It is
	// raised under mu, with the item, but TaskDone lowers it without the
	// lock, which consumers would otherwise take a second time per item;
	// only the TaskDone that brings it to zero while joining is set takes
	// the lock, to release the Join calls.
	unfinished atomic.Int64
	joining    atomic.Bool   // set while idle may be non-nil; written under mu
	idle       chan struct{} // closed when unfinished drops to zero; nil while no Join waits
	getters    waitList[T]
	putters    waitList[T]
	waiters    sync.Pool // of *waiter[T], reused so that blocking allocates nothing
}

// order is the discipline by which a localQueue hands out its items.
type order uint8

const (
	fifo order = iota
	lifo
	priority
)

// waiter is one goroutine blocked in put or get.
type waiter[T any] struct {
	// ready receives one token, sent under the queue's lock, when the
	// operation is complete: v then holds the item a getter received, and
	// err the result.
	ready      chan struct{}
	v          T // the item to put, or the item received
	err        error
	prev, next *waiter[T]
	queued     bool // in a waitList; only read and written under the lock
}

// waitList is a FIFO of waiters, doubly linked so that a cancelled waiter
// leaves it in constant time.
type waitList[T any] struct {
	head, tail *waiter[T]
}

func (l *waitList[T]) push(w *waiter[T]) {
	w.queued = true
	w.prev, w.next = l.tail, nil
	if l.tail == nil {
		l.head = w
	} else {
		l.tail.next = w
	}
	l.tail = w
}

func (l *waitList[T]) remove(w *waiter[T]) {
	if w.prev == nil {
		l.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		l.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
}

func (l *waitList[T]) pop() *waiter[T] {
	w := l.head
	if w != nil {
		l.remove(w)
	}
	return w
}

// wake completes w with err. The caller holds the lock and has already
// stored any item in w.v.
func wake[T any](w *waiter[T], err error) {
	w.err = err
	w.ready <- struct{}{}
}

func (q *localQueue[T]) newWaiter() *waiter[T] {
	if w, ok := q.waiters.Get().(*waiter[T]); ok {
		return w
	}
	return &waiter[T]{ready: make(chan struct{}, 1)}
}

func (q *localQueue[T]) freeWaiter(w *waiter[T]) {
	var zero T
	w.v, w.err = zero, nil
	q.waiters.Put(w)
}

// wait parks the calling goroutine until w is complete or done is closed.
// w must be in list. On cancellation it returns false, with w out of the
// list; if w completed meanwhile the completion wins, so that an item
// handed over is never lost.
func (q *localQueue[T]) wait(done <-chan struct{}, w *waiter[T], list *waitList[T]) bool {
	if done == nil {
		<-w.ready
		return true
	}
	select {
	case <-w.ready:
		return true
	case <-done:
	}
	q.mu.Lock()
	if w.queued {
		list.remove(w)
		q.mu.Unlock()
		return false
	}
	q.mu.Unlock()
	// Completed under the lock before we took it: the token is there.
	<-w.ready
	return true
}

// put hands v to the first waiting getter if there is one, as a channel
// send does, so that the getter does not take the lock again to find it;
// otherwise it buffers v, or waits for room.
func (q *localQueue[T]) put(ctx context.Context, v T, block bool) error {
	done, err := doneChan(ctx, block)
	if err != nil {
		return err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if w := q.getters.pop(); w != nil {
		q.unfinished.Add(1)
		w.v = v
		wake(w, nil)
		q.mu.Unlock()
		return nil
	}
	if q.maxsize <= 0 || q.n < q.maxsize {
		q.push(v)
		q.unfinished.Add(1)
		q.mu.Unlock()
		return nil
	}
	if !block {
		q.mu.Unlock()
		return ErrFull
	}
	w := q.newWaiter()
	w.v = v
	q.putters.push(w)
	q.mu.Unlock()
	if !q.wait(done, w, &q.putters) {
		q.freeWaiter(w)
		return context.Cause(ctx)
	}
	err = w.err
	q.freeWaiter(w)
	return err
}

// get takes the front item and, if a putter waits for room, moves its item
// in under the same lock, so that a bounded queue stays full while putters
// wait and the woken putter only learns that it succeeded.
func (q *localQueue[T]) get(ctx context.Context, block bool) (T, error) {
	var zero T
	done, err := doneChan(ctx, block)
	if err != nil {
		return zero, err
	}
	q.mu.Lock()
	if q.n > 0 {
		v := q.pop()
		if w := q.putters.pop(); w != nil {
			q.push(w.v)
			q.unfinished.Add(1)
			wake(w, nil)
		}
		q.mu.Unlock()
		return v, nil
	}
	if q.closed {
		q.mu.Unlock()
		return zero, ErrClosed
	}
	if !block {
		q.mu.Unlock()
		return zero, ErrEmpty
	}
	w := q.newWaiter()
	q.getters.push(w)
	q.mu.Unlock()
	if !q.wait(done, w, &q.getters) {
		q.freeWaiter(w)
		return zero, context.Cause(ctx)
	}
	v, err := w.v, w.err
	q.freeWaiter(w)
	return v, err
}

// push appends v to the ring, growing it if needed. The caller holds the
// lock and has checked maxsize.
func (q *localQueue[T]) push(v T) {
	if q.n == len(q.buf) {
		q.resize(max(2*len(q.buf), 8))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = v
	q.n++
	if q.order == priority {
		q.up(q.n - 1)
	}
}

// pop removes the next item to hand out. The caller holds the lock and has
// checked that the ring is not empty.
func (q *localQueue[T]) pop() T {
	var zero T
	var v T
	switch q.order {
	case fifo:
		v = q.buf[q.head]
		q.buf[q.head] = zero // let the item be collected
		q.head = (q.head + 1) & (len(q.buf) - 1)
		q.n--
	case lifo:
		i := (q.head + q.n - 1) & (len(q.buf) - 1)
		v = q.buf[i]
		q.buf[i] = zero
		q.n--
	case priority:
		v = q.buf[0]
		q.n--
		q.buf[0] = q.buf[q.n]
		q.buf[q.n] = zero
		q.down(0)
	}
	// An unbounded queue gives back memory after a burst; the quarter
	// threshold keeps a queue hovering near a size from resizing often.
	// A bounded queue keeps its ring, as a channel keeps its buffer.
	if q.maxsize <= 0 && len(q.buf) > 1024 && q.n < len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
	return v
}

// up and down restore the heap order of buf[:n] after the item at i moved,
// as container/heap does; the heap's root, buf[0], is the least item.
func (q *localQueue[T]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q.less(q.buf[i], q.buf[parent]) {
			return
		}
		q.buf[i], q.buf[parent] = q.buf[parent], q.buf[i]
		i = parent
	}
}

func (q *localQueue[T]) down(i int) {
	for {
		least := i
		if l := 2*i + 1; l < q.n && q.less(q.buf[l], q.buf[least]) {
			least = l
		}
		if r := 2*i + 2; r < q.n && q.less(q.buf[r], q.buf[least]) {
			least = r
		}
		if least == i {
			return
		}
		q.buf[i], q.buf[least] = q.buf[least], q.buf[i]
		i = least
	}
}

func (q *localQueue[T]) resize(size int) {
	buf := make([]T, size)
	k := copy(buf, q.buf[q.head:min(q.head+q.n, len(q.buf))])
	copy(buf[k:], q.buf[:q.n-k])
	q.buf, q.head = buf, 0
}

func (q *localQueue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// close wakes every waiter with ErrClosed: getters wait only on an empty
// queue, which closed stays empty, and putters' items are refused. With
// immediate it also drops the items, counted as done, so that Join waits
// only for the items Get had already returned.
func (q *localQueue[T]) close(immediate bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if immediate && q.n > 0 {
		q.unfinished.Add(-int64(q.n))
		q.buf, q.head, q.n = nil, 0, 0
		q.checkIdle()
	}
	for w := q.getters.pop(); w != nil; w = q.getters.pop() {
		wake(w, ErrClosed)
	}
	for w := q.putters.pop(); w != nil; w = q.putters.pop() {
		wake(w, ErrClosed)
	}
}

func (q *localQueue[T]) taskDone() error {
	for {
		n := q.unfinished.Load()
		if n <= 0 {
			return errTooManyTaskDone
		}
		if q.unfinished.CompareAndSwap(n, n-1) {
			// A Join sets joining before it reads the count, so either it
			// sees zero or this sees joining.
			if n == 1 && q.joining.Load() {
				q.mu.Lock()
				q.checkIdle()
				q.mu.Unlock()
			}
			return nil
		}
	}
}

// checkIdle releases the Join calls waiting if no task is unfinished, as
// Python's join returns once it sees the count at zero: if a Put came
// between the TaskDone that reached zero and this, they wait on. The
// caller holds the lock.
func (q *localQueue[T]) checkIdle() {
	if q.unfinished.Load() == 0 && q.idle != nil {
		close(q.idle)
		q.idle = nil
		q.joining.Store(false)
	}
}

// join waits on idle, a channel made by the first Join of an idle period
// and closed by the TaskDone (or close, or taskDoneN) that brings the
// count to zero. joining is set, under the lock, before the count is read:
// with taskDone's order (count, then joining) one of the two sees the
// other, so no wake-up is lost.
func (q *localQueue[T]) join(ctx context.Context) error {
	done, err := doneChan(ctx, true)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.joining.Store(true)
	if q.unfinished.Load() == 0 {
		q.joining.Store(q.idle != nil)
		q.mu.Unlock()
		return nil
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-done:
		return context.Cause(ctx)
	}
}

// taskDoneN marks n tasks done at once, for TaskDones that a child
// reported in a batch and for items lost or discarded.
func (q *localQueue[T]) taskDoneN(n int) {
	for {
		u := q.unfinished.Load()
		if q.unfinished.CompareAndSwap(u, max(u-int64(n), 0)) {
			break
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.checkIdle()
}
