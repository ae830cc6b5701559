package mp

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// The sentinel errors of package mp. Test for them with [errors.Is]: the
// errors a call returns may wrap them with more detail.
var (
	// ErrClosed is returned when submitting to a closed or terminated
	// [Pool], putting into a closed queue, or getting from a closed queue
	// that has been drained (Python 3.13's queue.ShutDown).
	ErrClosed = errors.New("mp: closed")

	// ErrFull is returned by TryPut on a queue that is full
	// (Python's queue.Full).
	ErrFull = errors.New("mp: queue full")

	// ErrEmpty is returned by TryGet on a queue that is empty
	// (Python's queue.Empty).
	ErrEmpty = errors.New("mp: queue empty")

	// ErrTerminated resolves every task that [Pool.Terminate] stopped or
	// kept from starting. Running goroutine tasks see it as the cause of
	// their context's cancellation.
	ErrTerminated = errors.New("mp: terminated")

	// ErrNotRegistered is returned at once when a function that was not
	// registered with [Register] is handed to an API that runs it in a
	// child process (Python's "Can't pickle local object").
	ErrNotRegistered = errors.New("mp: function not registered")

	// ErrLost is wrapped by the error that a cross-process
	// [JoinableQueue.Join] returns when items were delivered to a consumer
	// that died, more often than the delivery limit allows, and by the
	// error of the [Lock.Lock] or [Semaphore.Acquire] call that acquires
	// what a process held when it died.
	ErrLost = errors.New("mp: items lost")

	// ErrBrokenBarrier is wrapped by the error of [Barrier.Wait] when the
	// barrier is broken: aborted, reset while parties waited, left by a
	// party whose context ended, or left by a process that died waiting
	// at it (Python's threading.BrokenBarrierError).
	ErrBrokenBarrier = errors.New("mp: broken barrier")
)

// PanicError is the error a task returns when it panicked, on any back-end.
// The program keeps running; the panic is reported only through that
// task's result.
type PanicError struct {
	// Value is the value passed to panic. When the task ran in a child
	// process, Value is that value's text.
	Value any
	// Stack is the stack of the goroutine that panicked, as
	// [runtime/debug.Stack] formats it.
	Stack []byte

	// during says what mp was doing, when the panic came not from the
	// task itself but from a method of the user's that mp called:
	// "decoding the result (pkg.T)" for a GobDecode that panicked.
	during string
}

// Error returns the panic value and the stack trace, and what was under
// way when the panic did not come from the task itself, such as the
// decoding of its result.
func (e *PanicError) Error() string {
	if e.during != "" {
		return fmt.Sprintf("mp: panic while %s: %v\n\n%s", e.during, e.Value, e.Stack)
	}
	return fmt.Sprintf("mp: task panicked: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error, so that [errors.Is]
// and [errors.As] see through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ExitError reports a child process that ended without delivering its
// result: it exited with a non-zero status, was killed by a signal, or
// closed its connection early. A task whose process-pool worker died gets
// an ExitError too.
type ExitError struct {
	// Pid is the child's process ID.
	Pid int
	// ExitCode is the exit status, or -N when a signal N killed the child,
	// as Python's Process.exitcode.
	ExitCode int
	// Stderr is the tail of the child's standard error, when it was
	// captured (see [Process] Stderr).
	Stderr []byte

	worker bool // the child was a process pool's worker
}

// Error describes how the child ended. It says "before replying" even for
// status 0: the child ended without its result, whatever its status says.
func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("mp: ")
	if e.worker {
		b.WriteString("worker ")
	}
	if e.ExitCode < 0 {
		fmt.Fprintf(&b, "process %d killed by signal %d (%s) before replying", e.Pid, -e.ExitCode, signalName(-e.ExitCode))
	} else {
		fmt.Fprintf(&b, "process %d exited with status %d before replying", e.Pid, e.ExitCode)
	}
	if len(e.Stderr) > 0 {
		fmt.Fprintf(&b, "; stderr tail:\n%s", e.Stderr)
	}
	return b.String()
}

// The errors of Thread and Process methods called at the wrong moment, as
// Python raises for them (see the package documentation, Misuse).
var (
	errStartedTwice = errors.New("mp: started twice")
	errNotStarted   = errors.New("mp: not started")
	errRunning      = errors.New("mp: still running")
)

// errGoOnProcessPool is what Pool.Go returns on a process pool. It is not
// built with fmt.Errorf: package initialisation runs in every child, and
// fmt's first use there costs tens of microseconds of page faults.
var errGoOnProcessPool error = &wrappedError{
	msg: ErrNotRegistered.Error() + ": Pool.Go takes a closure, which cannot cross to a worker process; use ApplyAsync with a registered function",
	err: ErrNotRegistered,
}

// wrappedError is an error with its own message that wraps err, as
// fmt.Errorf("%w: ...") makes one.
type wrappedError struct {
	msg string
	err error
}

func (e *wrappedError) Error() string { return e.msg }
func (e *wrappedError) Unwrap() error { return e.err }

// signalName returns the conventional name of signal n, such as "killed".
func signalName(n int) string {
	return syscall.Signal(n).String()
}
