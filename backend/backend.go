// Package backend is the seam between an [mp.Pool] and what executes its
// tasks: goroutines, mp's long-lived worker processes, or workers on other
// machines (the cluster module). Programs do not use it; a back-end
// implements [Backend] and hands it to [mp.NewPoolOn], which returns an
// ordinary *mp.Pool on which Map, MapSeq, ApplyAsync, Close, Terminate and
// Join work unchanged.
//
// The pool keeps everything a caller can observe: the queue of tasks,
// Close, Terminate and Join, Stats, errors nobody collected, and the
// resolution of every result. A back-end only runs tasks: each of its
// workers takes [Task] values from a [Queue], sends their encoded
// [Request] to wherever they run, and resolves each with its [Reply] (or
// with an error of its own when the task cannot complete, such as an
// *mp.ExitError for a worker that died).
//
// The serving side of a back-end, the place where a Request arrives,
// runs it with [mp.RunRequest] on a local pool and sends back the Reply
// that call returns. Values and errors cross as bytes in mp's own
// encoding; a back-end moves bytes and never decodes them.
//
// The package is versioned by [Version]; backendtest states the pool
// semantics every back-end must keep, and a back-end that does not pass
// it is not done.
package backend

import "context"

// Version is the version of this interface. It changes whenever a method
// is added to or changes in Backend, Queue or Task, so that a back-end
// module can check at init that it was built against the mp it runs with.
const Version = 1

// Backend executes the tasks of one pool. The pool calls Work once for
// each worker, each on a goroutine of its own, and Terminate at most
// once.
type Backend interface {
	// Work is the body of worker i (0 ≤ i < the pool's worker count). It
	// takes tasks from q until q reports that the pool has been closed
	// and its queue drained, resolves every task it took (Complete or
	// Fail, exactly once each), and returns. After q.Terminated reports
	// true, it resolves what it holds and takes with mp.ErrTerminated.
	Work(i int, q Queue)
	// Terminate is called once by Pool.Terminate, after every task's
	// context has been cancelled with cause mp.ErrTerminated. A back-end
	// whose running tasks cannot see that context (a task in another
	// process) stops them here; its workers then fail them with
	// mp.ErrTerminated.
	Terminate()
	// Remote reports whether tasks leave the calling process. The pool
	// then accepts only functions registered with mp.Register and
	// encodable arguments, checked at submission, and Pool.Go, which
	// takes a closure, returns an error wrapping mp.ErrNotRegistered.
	Remote() bool
}

// Status is what [Queue.TryNext] found.
type Status int

const (
	// Took means a task was taken.
	Took Status = iota
	// Empty means no task is queued now; more may come.
	Empty
	// Drained means the pool has been closed and every task taken: the
	// worker may return once it has resolved what it holds.
	Drained
)

// Queue is the pool's queue of tasks as one worker sees it. Its methods
// are called by that worker only.
type Queue interface {
	// Next returns the next task, blocking until one is queued, or false
	// once the pool has been closed and the queue drained.
	Next() (Task, bool)
	// TryNext returns the next task without blocking.
	TryNext() (Task, Status)
	// Sleep counts the worker as idle and returns the channel on which
	// a submitter wakes it. The worker must call TryNext once more after
	// Sleep, since a task queued just before may not wake it; then either
	// receive from the channel and call Woke, or call Unsleep if it stops
	// waiting without receiving (a reply or a death came first).
	Sleep() <-chan struct{}
	// Woke tells the queue that the worker received its wake-up.
	Woke()
	// Unsleep withdraws a Sleep whose channel was not received from.
	Unsleep()
	// Terminated reports whether Pool.Terminate has been called.
	Terminated() bool
	// Started counts a task as running in Pool.Stats; Unstarted takes
	// that back for a task that will be sent again; Ended counts it as
	// ended, failed or not. Tasks resolved without being started (Fail
	// on a task taken after Terminate) are counted with Started and
	// Ended(true).
	Started()
	Unstarted()
	Ended(failed bool)
}

// Task is one task of a pool: a call of [mp.ApplyAsync], an item of
// [mp.MapSeq], or a chunk of items of [mp.Map]. Exactly one of Complete
// and Fail must be called, once.
type Task interface {
	// Request returns the task in encoded form. An error means the task
	// cannot be encoded; the worker then calls Fail with it.
	Request() (Request, error)
	// Context returns the context whose end withdraws the task, or nil
	// if only Terminate can. When it ends before the task has been sent,
	// the worker fails the task with context.Cause of it; when it ends
	// while the task runs, the back-end asks for the task to be cancelled
	// and the task ends with context.Cause of it.
	Context() context.Context
	// Complete resolves the task with the reply to its request, or with
	// err when the back-end could not get one (err then wins over r). It
	// reports whether the task failed, for Stats.
	Complete(r Reply, err error) (failed bool)
	// Fail resolves the task with err without running it.
	Fail(err error)
}

// Request is a task in encoded form.
type Request struct {
	// Func is the name under which the task's function was registered
	// with mp.Register: the same in every run of the same binary.
	Func string
	// Batch reports whether Arg holds a batch of arguments (a chunk of
	// mp.Map), whose reply is the batch of results.
	Batch bool
	// Arg is the encoded argument, or batch of arguments.
	Arg []byte
}

// Reply is the outcome of a [Request], as [mp.RunRequest] returns it.
type Reply struct {
	// Value is the encoded result, or batch of results, when Err is nil.
	Value []byte
	// Err is the task's error in mp's encoding, which keeps its message,
	// the sentinels it wraps, a panic's value and stack, and gob-registered
	// types; nil when the task succeeded.
	Err []byte
}
