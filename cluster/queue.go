package cluster

import (
	"context"
	"iter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// getPoll is how long a blocked Get waits on the server before it looks
// again whether the queue was closed.
const getPoll = 500 * time.Millisecond

// Queue is a first-in, first-out queue of items of type T kept on a
// JetStream server, the analogue of Python's multiprocessing.Queue
// between machines: every process that opens the queue's name on the same
// server with [NewQueue] puts into and gets from the same queue. It has
// the method set of [mp.Queue].
//
// Items cross encoded: a []byte as it is, any other type with
// encoding/gob, each item on its own (so every item carries its gob type
// description, a few hundred bytes for a struct). An item that does not
// encode, or whose message would exceed the server's max_payload, is an
// error at Put. Get removes an item from the server once it has it: an
// item is delivered to one Get of one process.
//
// A Queue is safe for concurrent use by multiple goroutines. The zero
// value is not usable; use [NewQueue].
type Queue[T any] struct{ c core[T] }

// JoinableQueue is a [Queue] that also counts unfinished items across
// processes, the analogue of Python's multiprocessing.JoinableQueue
// between machines: it has the method set of [mp.JoinableQueue]. An item
// a Get returned stays on the server until that process calls
// [JoinableQueue.TaskDone] for it; while it is held, the handle reports
// progress to the server, and if the process dies or goes silent for
// [AckWait], the item is delivered to another consumer, up to
// [MaxDeliver] deliveries (at-least-once: a consumer may see an item again
// after its first consumer died, so work should be idempotent).
// [JoinableQueue.Join] in any process waits until every item put so far
// was marked done by someone, and reports items whose deliveries ran out
// as lost.
//
// A JoinableQueue is safe for concurrent use by multiple goroutines. The
// zero value is not usable; use [NewJoinableQueue].
type JoinableQueue[T any] struct{ c core[T] }

// NewQueue opens the queue called name on the server js is connected to,
// creating it if it does not exist, and returns a handle on it. The queue
// holds at most maxsize items, or any number when maxsize <= 0; the first
// process to create it sets the bound. ctx bounds the set-up, and ends the
// handle's life: once it is done, the handle's calls fail.
func NewQueue[T any](ctx context.Context, js jetstream.JetStream, name string, maxsize int, opts ...Option) (*Queue[T], error) {
	q := new(Queue[T])
	if err := q.c.init(ctx, js, name, maxsize, false, opts); err != nil {
		return nil, err
	}
	return q, nil
}

// NewJoinableQueue opens the joinable queue called name on the server js
// is connected to, creating it if it does not exist, and returns a handle
// on it. The queue holds at most maxsize items not yet marked done, or
// any number when maxsize <= 0; the first process to create it sets the
// bound. Unlike [mp.JoinableQueue], items that a Get returned count
// against maxsize until TaskDone, since the server keeps them for
// redelivery. ctx bounds the set-up and ends the handle's life: once it
// is done, items this handle holds are handed back to the server for
// other consumers, and the handle's calls fail.
func NewJoinableQueue[T any](ctx context.Context, js jetstream.JetStream, name string, maxsize int, opts ...Option) (*JoinableQueue[T], error) {
	q := new(JoinableQueue[T])
	if err := q.c.init(ctx, js, name, maxsize, true, opts); err != nil {
		return nil, err
	}
	return q, nil
}

// Put adds v at the back of the queue. It blocks while the queue is full,
// until a consumer makes room or ctx is done. On success it returns nil;
// after Close it returns [mp.ErrClosed]; if ctx is done first it returns
// context.Cause(ctx) and the item is not added.
func (q *Queue[T]) Put(ctx context.Context, v T) error { return q.c.put(ctx, v, true) }

// TryPut adds v at the back of the queue if there is room. It returns
// [mp.ErrFull] when the queue is full and [mp.ErrClosed] after Close.
func (q *Queue[T]) TryPut(v T) error { return q.c.put(context.Background(), v, false) }

// Get removes and returns the item at the front of the queue. It blocks
// while the queue is empty, until an item comes, the queue is closed, or
// ctx is done. After Close it still returns the items left, then
// [mp.ErrClosed]; a Get blocked on the empty queue sees the Close within
// half a second. If ctx is done first it returns context.Cause(ctx).
func (q *Queue[T]) Get(ctx context.Context) (T, error) { return q.c.get(ctx, true) }

// TryGet removes and returns the item at the front of the queue if there
// is one. It returns [mp.ErrEmpty] when the queue is empty, and
// [mp.ErrClosed] when it is closed and drained.
func (q *Queue[T]) TryGet() (T, error) { return q.c.get(context.Background(), false) }

// Len returns the number of items waiting in the queue. It is a snapshot
// and costs a round trip to the server; it returns 0 if the server cannot
// be asked.
func (q *Queue[T]) Len() int { return q.c.len() }

// Close shuts the queue down for every process, the analogue of Python
// 3.13's Queue.shutdown(): afterwards Put and TryPut return [mp.ErrClosed],
// and Get and TryGet return the items left, then [mp.ErrClosed]. Closing a
// closed queue does nothing. It returns an error only when the server
// could not be told.
func (q *Queue[T]) Close() error { return q.c.close(false) }

// CloseNow shuts the queue down and discards the items left in it, the
// analogue of Python 3.13's Queue.shutdown(immediate=True).
func (q *Queue[T]) CloseNow() error { return q.c.close(true) }

// All returns an iterator over the items of the queue, each removed with
// Get, as mp's Queue.All: each item comes with a nil error; the loop ends
// without an error when the queue is closed and drained, and any other
// failed Get (ctx done, the server gone, an item that does not decode) is
// yielded once as the last pair.
func (q *Queue[T]) All(ctx context.Context) iter.Seq2[T, error] { return q.c.all(ctx) }

// Put adds v at the back of the queue and one unfinished item to the
// count that [JoinableQueue.Join] waits on. It blocks while the queue is
// full, until a TaskDone makes room or ctx is done. On success it returns
// nil; after Close it returns [mp.ErrClosed]; if ctx is done first it
// returns context.Cause(ctx) and the item is not added.
func (q *JoinableQueue[T]) Put(ctx context.Context, v T) error { return q.c.put(ctx, v, true) }

// TryPut adds v at the back of the queue if there is room. It returns
// [mp.ErrFull] when the queue is full and [mp.ErrClosed] after Close.
func (q *JoinableQueue[T]) TryPut(v T) error { return q.c.put(context.Background(), v, false) }

// Get returns the item at the front of the queue and holds it for this
// process until [JoinableQueue.TaskDone]. It blocks while the queue is
// empty, until an item comes, the queue is closed, or ctx is done. After
// Close it still returns the items left, then [mp.ErrClosed] once none is
// left and no other handle holds one (an item whose holder dies comes
// back); a Get blocked on the empty queue sees the Close within half a
// second. If ctx
// is done first it returns context.Cause(ctx).
func (q *JoinableQueue[T]) Get(ctx context.Context) (T, error) { return q.c.get(ctx, true) }

// TryGet returns the item at the front of the queue if there is one, and
// holds it as Get does. It returns [mp.ErrEmpty] when the queue is empty,
// and [mp.ErrClosed] when it is closed and drained.
func (q *JoinableQueue[T]) TryGet() (T, error) { return q.c.get(context.Background(), false) }

// Len returns the number of items waiting in the queue; items held by a
// consumer are not counted. It is a snapshot and costs a round trip to
// the server; it returns 0 if the server cannot be asked.
func (q *JoinableQueue[T]) Len() int { return q.c.len() }

// Close shuts the queue down for every process, as [Queue.Close] does.
// [JoinableQueue.Join] keeps working.
func (q *JoinableQueue[T]) Close() error { return q.c.close(false) }

// CloseNow shuts the queue down and discards the items waiting in it,
// which then count as done.
func (q *JoinableQueue[T]) CloseNow() error { return q.c.close(true) }

// All returns an iterator over the items of the queue, each got with
// Get; call TaskDone for each. As [Queue.All], it ends without an error
// when the queue is closed and drained, and yields any other failed Get
// once as the last pair.
func (q *JoinableQueue[T]) All(ctx context.Context) iter.Seq2[T, error] { return q.c.all(ctx) }

// TaskDone marks the oldest item this handle got and has not marked done
// as done, the analogue of Python's JoinableQueue.task_done(), and removes
// it from the server. Items are marked in the order they were got, as
// mp's own queues count them. TaskDone panics if this handle holds no
// item, as [sync.WaitGroup] panics on a negative counter.
func (q *JoinableQueue[T]) TaskDone() { q.c.taskDone() }

// Join blocks until every item put into the queue so far, by any process,
// was marked done by some consumer, or ctx is done, the analogue of
// Python's JoinableQueue.join() and of [sync.WaitGroup.Wait]. Items whose
// deliveries ran out ([MaxDeliver]) are removed and reported once, as an
// error wrapping [mp.ErrLost] that counts them. The server learns that an
// item ran out of deliveries when a consumer next asks for items, so Join
// waits for that while no consumer is getting. If ctx is done first, Join
// returns context.Cause(ctx).
func (q *JoinableQueue[T]) Join(ctx context.Context) error { return q.c.join(ctx) }
