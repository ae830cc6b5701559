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
// as much as through a buffered channel of the same capacity, around 50 ns,
// and allocates nothing once the queue has grown to its working size
// (BenchmarkQueue). A ctx that can be done adds about a third, half the
// cost of a channel operation in a select on ctx.Done().
//
// A *Queue placed in a task's argument, directly or in a struct field,
// crosses to the child process as a handle (see [Queue.GobEncode]): the
// child gets a queue with the same methods, and the state stays in the
// process that created the queue. Moving a small item from the parent to
// a consumer child costs around 400 ns (BenchmarkXQueueToChild). Items a
// child held when it died are delivered again to other consumers.
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
	core[T] // the state, and the methods shared with JoinableQueue
}

// JoinableQueue is a [Queue] that also counts unfinished tasks, the
// analogue of Python's queue.Queue with task_done and join, and of
// multiprocessing.JoinableQueue. Every successful Put adds one unfinished
// task; every [JoinableQueue.TaskDone] removes one; [JoinableQueue.Join]
// waits until none are left. Its other methods are those of a Queue.
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
	core[T] // the state, and the methods shared with Queue
}

// NewQueue returns an empty queue that holds at most maxsize items, or any
// number of items when maxsize <= 0, as Python's queue.Queue(maxsize).
// Memory for the items is allocated as the queue fills, not up front.
func NewQueue[T any](maxsize int) *Queue[T] {
	q := new(Queue[T])
	q.local.maxsize = maxsize
	return q
}

// NewLIFOQueue returns an empty queue whose Get returns the item put last,
// the analogue of Python's queue.LifoQueue(maxsize). It holds at most
// maxsize items, or any number of items when maxsize <= 0; everything else
// is as for [NewQueue].
func NewLIFOQueue[T any](maxsize int) *Queue[T] {
	q := NewQueue[T](maxsize)
	q.local.order = lifo
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
	q.local.order = priority
	q.local.less = less
	return q
}

// NewJoinableQueue returns an empty joinable queue that holds at most
// maxsize items, or any number of items when maxsize <= 0, as Python's
// multiprocessing.JoinableQueue(maxsize).
func NewJoinableQueue[T any](maxsize int) *JoinableQueue[T] {
	q := new(JoinableQueue[T])
	q.local.maxsize = maxsize
	return q
}

// core is what Queue and JoinableQueue share: their state, and the methods
// they have in common, which are promoted to both from here so that each
// is written and documented once. The method docs therefore name Python's
// Queue; for a JoinableQueue the twin is JoinableQueue's method of the
// same name.
type core[T any] struct {
	// remote serves the queue once its state is shared with other
	// processes: in a child, an *xproxy to the parent, which owns the
	// state; in the owner, once it has handed the queue to a child, the
	// *xstate around local. It is nil for a queue no other process knows,
	// so that the zero value works and the local path is a direct call
	// after one atomic load. It is atomic because the owner shares a queue
	// while other goroutines may be using it.
	remote atomic.Pointer[queueImpl[T]]
	local  localQueue[T]
}

// Put adds v at the back of the queue, the analogue of Python's
// Queue.put(v); a [JoinableQueue] also counts one more unfinished task,
// which [JoinableQueue.Join] waits on. Put blocks while the queue is full,
// until a Get makes room, the queue is closed, or ctx is done; Python's
// timeout= is [context.WithTimeout].
//
// On success, Put returns nil. After Close it returns [ErrClosed]. If ctx
// is done first, or already done when Put is called, it returns
// context.Cause(ctx) and leaves the queue, and the count of unfinished
// tasks, unchanged.
func (q *core[T]) Put(ctx context.Context, v T) error { return q.put(ctx, v, true) }

// TryPut adds v at the back of the queue if there is room, and for a
// [JoinableQueue] one unfinished task, the analogue of Python's
// Queue.put_nowait(v). It never blocks: it returns [ErrFull] when the
// queue is full and [ErrClosed] after Close.
func (q *core[T]) TryPut(v T) error { return q.put(context.Background(), v, false) }

// Get removes and returns the item at the front of the queue, the analogue
// of Python's Queue.get(). A consumer of a [JoinableQueue] calls
// [JoinableQueue.TaskDone] once it has finished with the item. Get blocks
// while the queue is empty, until a Put supplies an item, the queue is
// closed, or ctx is done.
//
// After Close, Get still returns the items left in the queue, then
// [ErrClosed] once it is drained. If ctx is done first, or already done
// when Get is called, it returns context.Cause(ctx) and leaves the queue
// unchanged.
func (q *core[T]) Get(ctx context.Context) (T, error) { return q.get(ctx, true) }

// TryGet removes and returns the item at the front of the queue if there
// is one, the analogue of Python's Queue.get_nowait(). It never blocks: it
// returns [ErrEmpty] when the queue is empty, and [ErrClosed] when it is
// closed and drained. In a child process, a TryGet that finds none of the
// items prefetched for this process asks the owner: a round trip.
func (q *core[T]) TryGet() (T, error) { return q.get(context.Background(), false) }

// Len returns the number of items in the queue, the analogue of Python's
// Queue.qsize(). Items that Get has returned are not counted, even those of
// a [JoinableQueue] not yet marked done. It is a snapshot: other goroutines
// may change the queue before the caller acts on it.
//
// In a child process, Len first waits for the answers to this process's
// Puts in flight and then asks the owner: a round trip. It returns 0 when
// the connection to the owner is lost.
func (q *core[T]) Len() int { return q.len() }

// Close shuts the queue down, the analogue of Python 3.13's
// Queue.shutdown(). Afterwards Put and TryPut return [ErrClosed], and so do
// the Puts blocked in a full queue, whose items are not added. Get and
// TryGet keep returning the items left, then return [ErrClosed]; Gets
// blocked on the empty queue return [ErrClosed] at once. A
// [JoinableQueue]'s Join keeps working: it still waits for the items left
// in the queue. Closing a closed queue does nothing.
//
// In a child process, Close first waits for the answers to this process's
// Puts in flight and then asks the owner to close the queue, for every
// process, and waits for its answer: a round trip. When the connection to
// the owner is lost, Close does nothing.
func (q *core[T]) Close() { q.close(false) }

// CloseNow shuts the queue down and discards the items left in it, the
// analogue of Python 3.13's Queue.shutdown(immediate=True). Afterwards
// every Put and every Get, including the ones blocked, returns
// [ErrClosed]. A [JoinableQueue] counts each discarded item as done: its
// Join waits only for the items that Get had already returned. In a child
// process, CloseNow is a round trip to the owner, as Close is.
func (q *core[T]) CloseNow() { q.close(true) }

// All returns an iterator over the items of the queue, each removed with
// Get, the Go form of Python's "while True: item = q.get()" consumer
// loop. It yields each item with a nil error, and ends without an error
// when the queue is closed and drained. When Get fails in any other way,
// All yields the zero T with that error and ends: the error is
// context.Cause(ctx) once ctx is done and, in a child process, the error
// of a lost connection to the owner or of an item that could not be
// decoded. A consumer of a [JoinableQueue] calls [JoinableQueue.TaskDone] for each
// item, as with Get:
//
//	for item, err := range q.All(ctx) {
//		if err != nil {
//			return err
//		}
//		process(item)
//		q.TaskDone()
//	}
//
// A loop with one variable, "for item := range q.All(ctx)", drops the
// error: it suits only a queue of this process and a ctx that is never
// done, where no error can occur.
func (q *core[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := q.get(ctx, true)
			if errors.Is(err, ErrClosed) {
				return
			}
			// After an error every later Get would fail again (ctx, the
			// connection) or the caller would lose track of which item
			// failed (decoding): one error ends the loop.
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// TaskDone marks one unfinished task as done, the analogue of Python's
// JoinableQueue.task_done(): a consumer calls it once for each item it got,
// after it has finished with the item. TaskDone panics if it is called more
// times than items were put, as Python raises ValueError and
// [sync.WaitGroup] panics on a negative counter.
//
// A call to TaskDone "synchronizes before" the return of any Join call
// that it unblocks.
//
// In a child process, TaskDone does not wait for the owner: it queues a
// report on the connection to the owner, which reaches the owner before
// anything this process sends afterwards.
func (q *JoinableQueue[T]) TaskDone() {
	if err := q.taskDone(); err != nil {
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
// or already done when Join is called, it returns context.Cause(ctx).
//
// In a child process, Join first waits for the answers to this process's
// Puts in flight, and returns the error that counts the ones the queue
// refused (see [Queue]) if there were any; then it waits for the owner's
// Join, over the connection. Once the queue has crossed to a child, Join,
// in any process, reports items lost since the last such report with an
// error wrapping [ErrLost], as [JoinableQueue] describes.
func (q *JoinableQueue[T]) Join(ctx context.Context) error { return q.join(ctx) }

// errTooManyTaskDone is what queueImpl.taskDone reports when the count of
// unfinished tasks would go negative; JoinableQueue.TaskDone turns it into
// a panic with the same text.
var errTooManyTaskDone = errors.New("mp: JoinableQueue.TaskDone called more times than items were put")

// queueImpl is the seam between the public queue types and a state shared
// with other processes. Every operation of Queue and JoinableQueue on such
// a queue goes through it, so that a queue handed to a child process is
// served there by a proxy to the parent, which owns the state, and in the
// parent by the state that also serves the children, with unchanged
// methods.
//
// The implementations are *xstate in the owner and *xproxy in a child;
// *localQueue satisfies it too, and serves a queue nobody shares. An
// implementation must give the documented semantics of the public
// methods: put and get with block set wait as Put and Get do and return
// context.Cause(ctx) on cancellation, without it they never wait and report
// ErrFull or ErrEmpty; close(true) is CloseNow; taskDone returns nil or
// errTooManyTaskDone, never another error, and does not panic itself, so
// that the panic happens in the caller's goroutine and process. A failure
// of the connection to the owner is reported by the next put, get or join
// (join's error may wrap ErrLost).
type queueImpl[T any] interface {
	put(ctx context.Context, v T, block bool) error
	get(ctx context.Context, block bool) (T, error)
	len() int
	close(immediate bool)
	taskDone() error
	join(ctx context.Context) error
}

var (
	_ queueImpl[int] = (*localQueue[int])(nil)
	_ queueImpl[int] = (*xstate[int])(nil)
	_ queueImpl[int] = (*xproxy[int])(nil)
)

// The dispatch: the shared state when there is one, else the local queue.

func (c *core[T]) put(ctx context.Context, v T, block bool) error {
	if r := c.remote.Load(); r != nil {
		return (*r).put(ctx, v, block)
	}
	return c.local.put(ctx, v, block)
}

func (c *core[T]) get(ctx context.Context, block bool) (T, error) {
	if r := c.remote.Load(); r != nil {
		return (*r).get(ctx, block)
	}
	return c.local.get(ctx, block)
}

func (c *core[T]) len() int {
	if r := c.remote.Load(); r != nil {
		return (*r).len()
	}
	return c.local.len()
}

func (c *core[T]) close(immediate bool) {
	if r := c.remote.Load(); r != nil {
		(*r).close(immediate)
		return
	}
	c.local.close(immediate)
}

func (c *core[T]) taskDone() error {
	if r := c.remote.Load(); r != nil {
		return (*r).taskDone()
	}
	return c.local.taskDone()
}

func (c *core[T]) join(ctx context.Context) error {
	if r := c.remote.Load(); r != nil {
		return (*r).join(ctx)
	}
	return c.local.join(ctx)
}

// doneChan returns the channel that a call waits on: for a blocking call
// (block set), ctx's done channel, or an error if ctx is already done, so
// that, as in semaphore.Acquire, a caller whose ctx is done fails even if
// it could proceed without waiting; for a Try call, which never waits and
// ignores ctx, nil. It is split from liveDone so that it inlines, and a
// Try call pays no call for it.
func doneChan(ctx context.Context, block bool) (<-chan struct{}, error) {
	if !block {
		return nil, nil
	}
	return liveDone(ctx)
}

// liveDone returns ctx's done channel, or context.Cause(ctx) if it is closed.
func liveDone(ctx context.Context) (<-chan struct{}, error) {
	done := ctx.Done()
	if done != nil {
		select {
		case <-done:
			return nil, context.Cause(ctx)
		default:
		}
	}
	return done, nil
}
