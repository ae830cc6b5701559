package mp

import (
	"context"
	"sync/atomic"
)

// Thread runs one task on a goroutine of its own: the analogue of Python's
// threading.Thread(target=f, args=(arg,)). Its lifecycle — Start, Join,
// Result, Alive, Done — is the one [Process] has, so that code moves from
// one to the other by changing the constructor.
//
// A Thread is safe for concurrent use by multiple goroutines. The zero
// value is not usable; use [NewThread]. A Thread must not be copied after
// first use.
type Thread[R any] struct {
	run     func() (R, error)
	started atomic.Bool
	done    chan struct{}
	val     R
	err     error
}

// NewThread returns a Thread that will run f(ctx, arg) once started. The
// task's context is context.Background(): a goroutine cannot be stopped
// from outside, so a task that should stop takes its own context in arg,
// or closes over it.
func NewThread[A, R any](f Func[A, R], arg A) *Thread[R] {
	return &Thread[R]{
		run:  func() (R, error) { return callTask(context.Background(), f, arg) },
		done: make(chan struct{}),
	}
}

// Start starts the task on a new goroutine: the analogue of Python's
// Thread.start. The goroutine lives until the task returns. Starting a
// Thread twice returns an error, as in Python.
func (t *Thread[R]) Start() error {
	if t.started.Swap(true) {
		return errStartedTwice
	}
	go func() {
		t.val, t.err = t.run()
		t.run = nil
		close(t.done)
	}()
	return nil
}

// Join waits for the task to return: the analogue of Python's Thread.join
// and of [sync.WaitGroup.Wait]. It blocks until the task returns or ctx is
// done. It returns the task's error (a panic in the task as a
// *[PanicError]); when ctx is done first it returns context.Cause(ctx),
// and the task keeps running: ctx bounds the wait only. Join before Start
// returns an error. The task's return "synchronizes before" the return of
// any Join call that it unblocks.
func (t *Thread[R]) Join(ctx context.Context) error {
	if !t.started.Load() {
		return errNotStarted
	}
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Result returns the task's result and error once it has returned. Before
// that it returns the zero R and an error saying the thread has not
// finished; it never blocks.
func (t *Thread[R]) Result() (R, error) {
	select {
	case <-t.done:
		return t.val, t.err
	default:
		var zero R
		if !t.started.Load() {
			return zero, errNotStarted
		}
		return zero, errRunning
	}
}

// Alive reports whether the thread has started and its task has not yet
// returned: the analogue of Python's Thread.is_alive.
func (t *Thread[R]) Alive() bool {
	if !t.started.Load() {
		return false
	}
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

// Done returns a channel that is closed when the task has returned. It is
// never closed if the thread is never started, and never sent on.
func (t *Thread[R]) Done() <-chan struct{} {
	return t.done
}
