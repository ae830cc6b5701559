package mp

import (
	"context"
	"errors"
	"iter"
	"sync/atomic"
)

// Queue is a first-in, first-out queue of items of type T, the analogue of
// Python's queue.Queue (and, between processes, multiprocessing.Queue). It
// may be bounded, in which case [Queue.Put] blocks while it is full.
// [NewLIFOQueue] and [NewPriorityQueue] make queues that hand out their
// items in another order; for them, "the front of the queue" in the
// method docs means the next item in that order.
//
// A Queue is safe for concurrent use by multiple goroutines. The zero value
// for Queue is an empty, unbounded queue ready to use. A Queue must not be
// copied after first use.
//
// A Put "synchronizes before" the Get that returns its item, as a send on
// a channel does before the matching receive.
//
// Moving an item from one goroutine to another through a Queue costs about
// as much as through a buffered channel of the same capacity, some 40 to
// 70 ns on a 2-core AMD EPYC with one or four producers and consumers, and
// allocates nothing once the queue has grown to its working size
// (BenchmarkQueue in queue_bench_test.go). With a ctx that can be done it
// costs about a third more, half as much as a channel operation in a
// select on ctx.Done().
//
// A *Queue placed in a task's argument, directly or in a struct field,
// crosses to the child process as a handle (see [Queue.GobEncode]): the
// child gets a queue with the same methods, and the state stays in the
// process that created the queue. Moving a small item from the parent to
// a consumer child costs about 400 ns (BenchmarkXQueueToChild, 2-core AMD
// EPYC), some ten times faster than Python's multiprocessing.Queue. Items
// a child held when it died are delivered again to other consumers.
//
// Every item whose Put returned nil is delivered or reported, never
// dropped. After Close, a child's Put returns [ErrClosed] as the parent's
// does. A child's Put into an unbounded queue returns once the item is on
// its way, so one that races with Close, or whose item's GobDecode panics
// in the parent, may be refused when it arrives: then the child's next Put
// or Join returns an error that counts the refused items and wraps the
// first one's reason ([ErrClosed] or a *[PanicError]), and if the task
// makes no such call, the task fails with that error.
type Queue[T any] struct {
	c core[T]
}

// JoinableQueue is a [Queue] that also counts unfinished tasks, the
// analogue of Python's queue.Queue with task_done and join, and of
// multiprocessing.JoinableQueue. Every successful Put adds one unfinished
// task; every [JoinableQueue.TaskDone] removes one; [JoinableQueue.Join]
// waits until none are left.
//
// A JoinableQueue is safe for concurrent use by multiple goroutines. A Put
// "synchronizes before" the Get that returns its item. The zero value for
// JoinableQueue is an empty, unbounded queue ready to use. A JoinableQueue
// must not be copied after first use.
//
// A *JoinableQueue crosses to a child process as a [Queue] does. A
// consumer child's TaskDone calls reach the parent's Join, and when a
// child dies holding items it got but did not mark done, they are
// delivered to other consumers again, up to three deliveries each; past
// that Join returns an error wrapping [ErrLost] that says how many items
// were lost and which process held them. Join never waits for a dead
// process.
//
// Every item whose Put returned nil is delivered, or counted in the
// [ErrLost] of Join: no third way. A child's TaskDone is reported to the
// parent before anything else the child sends afterwards, so an item
// marked done is never counted lost. A child's Put that the queue refused
// after it had returned (see [Queue]) is counted by Join, as well as
// reported in the child.
type JoinableQueue[T any] struct {
	c core[T]
}

// NewQueue returns an empty queue that holds at most maxsize items, or any
// number of items when maxsize <= 0, as Python's queue.Queue(maxsize).
// Memory for the items is allocated as the queue fills, not up front.
func NewQueue[T any](maxsize int) *Queue[T] {
	q := new(Queue[T])
	q.c.local.maxsize = maxsize
	return q
}

// NewLIFOQueue returns an empty queue whose Get returns the item put last,
// the analogue of Python's queue.LifoQueue(maxsize). It holds at most
// maxsize items, or any number of items when maxsize <= 0; everything else
// is as for [NewQueue].
func NewLIFOQueue[T any](maxsize int) *Queue[T] {
	q := NewQueue[T](maxsize)
	q.c.local.order = lifo
	return q
}

// NewPriorityQueue returns an empty queue whose Get returns the least item
// according to less, the analogue of Python's queue.PriorityQueue(maxsize).
// Items that are equal under less come out in no particular order; to keep
// them first in, first out, add a sequence number to the item, as Python's
// documentation advises. less must be a strict weak ordering, and it is
// called with the queue's lock held, so it must not use the queue and must
// not panic. The queue holds at most maxsize items, or any number of items
// when maxsize <= 0; everything else is as for [NewQueue].
//
// NewPriorityQueue panics if less is nil.
func NewPriorityQueue[T any](maxsize int, less func(a, b T) bool) *Queue[T] {
	if less == nil {
		panic("mp: NewPriorityQueue with a nil less function")
	}
	q := NewQueue[T](maxsize)
	q.c.local.order = priority
	q.c.local.less = less
	return q
}

// NewJoinableQueue returns an empty joinable queue that holds at most
// maxsize items, or any number of items when maxsize <= 0, as Python's
// multiprocessing.JoinableQueue(maxsize).
func NewJoinableQueue[T any](maxsize int) *JoinableQueue[T] {
	q := new(JoinableQueue[T])
	q.c.local.maxsize = maxsize
	return q
}

// Put adds v at the back of the queue, the analogue of Python's
// Queue.put(v). It blocks while the queue is full, until a Get makes room,
// the queue is closed, or ctx is done; Python's timeout= is
// [context.WithTimeout].
//
// On success, Put returns nil. After [Queue.Close] it returns [ErrClosed].
// If ctx is done first, or already done when Put is called, it returns
// ctx.Err() and leaves the queue unchanged.
func (q *Queue[T]) Put(ctx context.Context, v T) error { return q.c.put(ctx, v, true) }

// TryPut adds v at the back of the queue if there is room, the analogue of
// Python's Queue.put_nowait(v). It never blocks: it returns [ErrFull] when
// the queue is full and [ErrClosed] after [Queue.Close].
func (q *Queue[T]) TryPut(v T) error { return q.c.put(context.Background(), v, false) }

// Get removes and returns the item at the front of the queue, the analogue
// of Python's Queue.get(). It blocks while the queue is empty, until a Put
// supplies an item, the queue is closed, or ctx is done.
//
// After [Queue.Close], Get still returns the items left in the queue, then
// [ErrClosed] once it is drained. If ctx is done first, or already done
// when Get is called, it returns ctx.Err() and leaves the queue unchanged.
func (q *Queue[T]) Get(ctx context.Context) (T, error) { return q.c.get(ctx, true) }

// TryGet removes and returns the item at the front of the queue if there
// is one, the analogue of Python's Queue.get_nowait(). It never blocks: it
// returns [ErrEmpty] when the queue is empty, and [ErrClosed] when it is
// closed and drained.
func (q *Queue[T]) TryGet() (T, error) { return q.c.get(context.Background(), false) }

// Len returns the number of items in the queue, the analogue of Python's
// Queue.qsize(). It is a snapshot: other goroutines may change the queue
// before the caller acts on it.
func (q *Queue[T]) Len() int { return q.c.len() }

// Close shuts the queue down, the analogue of Python 3.13's
// Queue.shutdown(). Afterwards Put and TryPut return [ErrClosed], and so do
// the Puts blocked in a full queue, whose items are not added. Get and
// TryGet keep returning the items left, then return [ErrClosed]; Gets
// blocked on the empty queue return [ErrClosed] at once. Closing a closed
// queue does nothing.
func (q *Queue[T]) Close() { q.c.close(false) }

// CloseNow shuts the queue down and discards the items left in it, the
// analogue of Python 3.13's Queue.shutdown(immediate=True). Afterwards
// every Put and every Get, including the ones blocked, returns
// [ErrClosed].
func (q *Queue[T]) CloseNow() { q.c.close(true) }

// All returns an iterator over the items of the queue, each removed with
// [Queue.Get]. The loop ends when the queue is closed and drained, or when
// ctx is done; check ctx.Err() afterwards to tell the two apart. It is the
// Go form of Python's "while True: item = q.get()" consumer loop.
func (q *Queue[T]) All(ctx context.Context) iter.Seq[T] { return q.c.all(ctx) }

// Put adds v at the back of the queue and one unfinished task to the
// count that [JoinableQueue.Join] waits on, the analogue of Python's
// JoinableQueue.put(v). It blocks while the queue is full, until a Get
// makes room, the queue is closed, or ctx is done.
//
// On success, Put returns nil. After [JoinableQueue.Close] it returns
// [ErrClosed]. If ctx is done first, or already done when Put is called,
// it returns ctx.Err() and leaves the queue and the count unchanged.
func (q *JoinableQueue[T]) Put(ctx context.Context, v T) error { return q.c.put(ctx, v, true) }

// TryPut adds v at the back of the queue, and one unfinished task, if there
// is room, the analogue of Python's JoinableQueue.put_nowait(v). It never
// blocks: it returns [ErrFull] when the queue is full and [ErrClosed] after
// [JoinableQueue.Close].
func (q *JoinableQueue[T]) TryPut(v T) error { return q.c.put(context.Background(), v, false) }

// Get removes and returns the item at the front of the queue, the analogue
// of Python's JoinableQueue.get(). The caller calls
// [JoinableQueue.TaskDone] once it has finished with the item. Get blocks
// while the queue is empty, until a Put supplies an item, the queue is
// closed, or ctx is done.
//
// After [JoinableQueue.Close], Get still returns the items left in the
// queue, then [ErrClosed] once it is drained. If ctx is done first, or
// already done when Get is called, it returns ctx.Err() and leaves the
// queue unchanged.
func (q *JoinableQueue[T]) Get(ctx context.Context) (T, error) { return q.c.get(ctx, true) }

// TryGet removes and returns the item at the front of the queue if there
// is one, the analogue of Python's JoinableQueue.get_nowait(). It never
// blocks: it returns [ErrEmpty] when the queue is empty, and [ErrClosed]
// when it is closed and drained.
func (q *JoinableQueue[T]) TryGet() (T, error) { return q.c.get(context.Background(), false) }

// Len returns the number of items in the queue, the analogue of Python's
// JoinableQueue.qsize(). Items taken by Get but not yet marked done are not
// counted. It is a snapshot: other goroutines may change the queue before
// the caller acts on it.
func (q *JoinableQueue[T]) Len() int { return q.c.len() }

// Close shuts the queue down, the analogue of Python 3.13's
// Queue.shutdown(). Afterwards Put and TryPut return [ErrClosed], and so do
// the Puts blocked in a full queue, whose items are not added. Get and
// TryGet keep returning the items left, then return [ErrClosed]; Gets
// blocked on the empty queue return [ErrClosed] at once. [JoinableQueue.Join]
// keeps working: it still waits for the items left in the queue. Closing a
// closed queue does nothing.
func (q *JoinableQueue[T]) Close() { q.c.close(false) }

// CloseNow shuts the queue down and discards the items left in it, counting
// each as done, the analogue of Python 3.13's
// Queue.shutdown(immediate=True). Afterwards every Put and every Get,
// including the ones blocked, returns [ErrClosed]; [JoinableQueue.Join]
// waits only for the items that Get had already returned.
func (q *JoinableQueue[T]) CloseNow() { q.c.close(true) }

// All returns an iterator over the items of the queue, each removed with
// [JoinableQueue.Get]; call [JoinableQueue.TaskDone] for each as with Get:
//
//	for item := range q.All(ctx) {
//		process(item)
//		q.TaskDone()
//	}
//
// The loop ends when the queue is closed and drained, or when ctx is done;
// check ctx.Err() afterwards to tell the two apart.
func (q *JoinableQueue[T]) All(ctx context.Context) iter.Seq[T] { return q.c.all(ctx) }

// TaskDone marks one unfinished task as done, the analogue of Python's
// JoinableQueue.task_done(): a consumer calls it once for each item it got,
// after it has finished with the item. TaskDone panics if it is called more
// times than items were put, as Python raises ValueError and
// [sync.WaitGroup] panics on a negative counter.
//
// A call to TaskDone "synchronizes before" the return of any Join call
// that it unblocks.
func (q *JoinableQueue[T]) TaskDone() {
	if err := q.c.taskDone(); err != nil {
		panic(err.Error())
	}
}

// Join blocks until every item put into the queue so far has been marked
// done with [JoinableQueue.TaskDone], or ctx is done, the analogue of
// Python's JoinableQueue.join() and of [sync.WaitGroup.Wait]. The count
// may reach zero many times, so Join can wait for one batch of items after
// another.
//
// Join returns nil when no unfinished task is left. If ctx is done first,
// or already done when Join is called, it returns ctx.Err().
func (q *JoinableQueue[T]) Join(ctx context.Context) error { return q.c.join(ctx) }

// errTooManyTaskDone is what queueImpl.taskDone reports when the count of
// unfinished tasks would go negative; JoinableQueue.TaskDone turns it into
// a panic with the same text.
var errTooManyTaskDone = errors.New("mp: JoinableQueue.TaskDone called more times than items were put")

// queueImpl is the seam between the public queue types and the state they
// act on. Every operation of Queue and JoinableQueue goes through it, so
// that a queue handed to a child process can be served there by a proxy
// to the parent, which owns the state, with unchanged methods.
//
// The local implementation is *localQueue. An implementation must give the
// documented semantics of the public methods: put and get with block set
// wait as Put and Get do and return ctx.Err() on cancellation, without it
// they never wait and report ErrFull or ErrEmpty; close(true) is CloseNow;
// taskDone returns nil or errTooManyTaskDone, never another error, and
// does not panic itself, so that the panic happens in the caller's
// goroutine and process. A failure of the connection to the owner is
// reported by the next put, get or join (join's error may wrap ErrLost).
type queueImpl[T any] interface {
	put(ctx context.Context, v T, block bool) error
	get(ctx context.Context, block bool) (T, error)
	len() int
	close(immediate bool)
	taskDone() error
	join(ctx context.Context) error
}

var _ queueImpl[int] = (*localQueue[int])(nil)

// core is what Queue and JoinableQueue share: the seam and the local state.
type core[T any] struct {
	// impl serves the queue when the state lives elsewhere (in a child
	// process, the parent's queue). It is set once, before the queue value
	// is shared, and stays nil for a queue that this process owns, so that
	// the zero value works and the local path is a direct call.
	impl  queueImpl[T]
	local localQueue[T]
	// xs is set, once, when this process hands the queue to a child
	// (xqueue.go): from then on the local state is shared with the
	// children's proxies, Puts encode at once, and items that a dead
	// child held come back. It is atomic because sharing happens while
	// other goroutines may already use the queue.
	xs atomic.Pointer[xstate[T]]
}

func (c *core[T]) put(ctx context.Context, v T, block bool) error {
	if c.impl != nil {
		return c.impl.put(ctx, v, block)
	}
	if x := c.xs.Load(); x != nil {
		return x.put(ctx, v, block)
	}
	return c.local.put(ctx, v, block)
}

func (c *core[T]) get(ctx context.Context, block bool) (T, error) {
	if c.impl != nil {
		return c.impl.get(ctx, block)
	}
	if x := c.xs.Load(); x != nil {
		v, _, err := x.take(ctx, block)
		return v, err
	}
	return c.local.get(ctx, block)
}

func (c *core[T]) len() int {
	if c.impl != nil {
		return c.impl.len()
	}
	if x := c.xs.Load(); x != nil {
		return x.len()
	}
	return c.local.len()
}

func (c *core[T]) close(immediate bool) {
	if c.impl != nil {
		c.impl.close(immediate)
		return
	}
	if x := c.xs.Load(); x != nil {
		x.close(immediate)
		return
	}
	c.local.close(immediate)
}

func (c *core[T]) taskDone() error {
	if c.impl != nil {
		return c.impl.taskDone()
	}
	return c.local.taskDone()
}

func (c *core[T]) join(ctx context.Context) error {
	if c.impl != nil {
		return c.impl.join(ctx)
	}
	if x := c.xs.Load(); x != nil {
		return x.join(ctx)
	}
	return c.local.join(ctx)
}

func (c *core[T]) all(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			v, err := c.get(ctx, true)
			if err != nil || !yield(v) {
				return
			}
		}
	}
}
