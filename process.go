package mp

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// processCount numbers the default names of children, as Python does.
var processCount atomic.Int64

// Process runs one registered task in a child process: the analogue of
// Python's multiprocessing.Process. The child is a fresh run of the same
// binary (see [Main]); the task's argument crosses to it encoded, and its
// result and error cross back.
//
// The fields are set before [Process.Start], like those of [os/exec.Cmd],
// and must not be changed after it. Methods are safe for concurrent use by
// multiple goroutines once Start has been called. Create a Process with
// [NewProcess]; the zero value is not usable. A Process must not be copied
// after first use.
//
// Python's daemon flag has no counterpart because every child already
// behaves as a daemon child does in Python: it never keeps the parent from
// exiting, and it dies with its parent. Unlike Python, it also dies when
// the parent is killed: on Linux through the parent-death signal, and on
// other Unix systems, and for a child that began as a spare (see
// [SetSpares]), because the child exits when its connection to the parent
// closes. [Process.Terminate] and [Process.Kill] reach the child's
// whole process group, so programs the task started die too.
//
// Start starts the child and two goroutines, one waiting for the task's
// reply and one for the child's exit; they end once the child has exited
// and been reaped, so every child is reaped whether or not anyone calls
// Join. The child's standard input is /dev/null. The child leads its own
// process group, so a Ctrl-C at the terminal reaches only the parent; the
// children then die with it.
//
// Once the program has started a child, Start usually hands the task to a
// spare child, exec'd and initialised ahead of need (see [SetSpares] for
// when it cannot, and for the cost). From Start to the result with the
// child reaped then takes, in a small program, about 0.7 ms for starts
// one after another and 0.8 ms for starts 20 ms apart, less than
// exec'ing and reaping a minimal static Go binary; from scratch it takes
// 1.6 and 2.4 ms (BenchmarkProcessStartSmallProgram, with MP_SPARES
// unset and with MP_SPARES=0). Most of what remains is the child's exit.
// Starting from scratch costs about 1.5 times an exec of that minimal
// binary; most of the difference is the initialisation of the packages
// the program links, encoding/gob's above all, which every child runs
// again.
// Start-up grows with what the binary initialises: a program that imports
// package net links dynamically by default and pays for the dynamic
// loader in every child.
//
// Code that runs in children counts towards `go test -cover`: a child is
// the test binary again, inherits the coverage settings, and writes its
// counters when it exits normally; a child ended by Terminate or Kill
// writes none.
type Process[R any] struct {
	// Name is the child's name, as CurrentProcess reports it in the child.
	// Empty means "Process-N", N counting the processes this process
	// created.
	Name string

	// Env holds extra environment variables, "KEY=value", added to the
	// parent's environment for the child.
	Env []string

	// Stdout and Stderr receive the child's standard output and error.
	// Nil means the parent's own os.Stdout and os.Stderr, passed to the
	// child as they are. When Stderr is set, the last few kilobytes of it
	// are also kept for [ExitError.Stderr].
	Stdout, Stderr io.Writer

	task    *entry
	arg     []byte
	prepErr error // why the task cannot run: reported by Start
	decode  func(*wire.Conn, []byte) (R, error)

	done chan struct{} // closed once the child is reaped and the outcome known

	mu      sync.Mutex
	started bool
	ch      *child

	// pending counts what must happen before done is closed: Start
	// succeeding, watch having the reply, and the child being reaped.
	// Whichever comes last closes done, usually the reaper, so that Join
	// wakes without a switch to a goroutine in between.
	pending atomic.Int32

	// Set before done is closed; result and err by watch first.
	result   R
	err      error
	exitCode int
}

// NewProcess returns a Process that will run f(ctx, arg) in a child
// process when started. f must have been registered with [Register]; if it
// was not, or arg cannot be encoded, [Process.Start] returns the error.
func NewProcess[A, R any](f Func[A, R], arg A) *Process[R] {
	p := &Process[R]{done: make(chan struct{}), decode: codecFor[R]().as(roleResult).decodeOn}
	p.pending.Store(3)
	p.task, p.prepErr = registered(f)
	if p.prepErr == nil {
		p.arg, p.prepErr = codecFor[A]().as(roleArg).encode(arg)
	}
	if size := (&wire.Frame{Header: []byte(" " + serviceRun + p.taskName()), Raw: p.arg}).Size(); p.prepErr == nil && size > wire.DefaultMaxFrame {
		// Refused here rather than after the child has started.
		p.prepErr = wire.FrameTooLarge(size, wire.DefaultMaxFrame)
	}
	return p
}

// taskName is the registry key of the task, or "" if it is not registered.
func (p *Process[R]) taskName() string {
	if p.task == nil {
		return ""
	}
	return p.task.name
}

// Start starts the child process and sends it the task, as Python's
// Process.start. It returns once the child has answered its handshake. It
// fails at once, starting nothing, when the task is not registered
// ([ErrNotRegistered]) or its argument cannot be encoded; it fails when
// called twice, when the platform has no process support
// ([errors.ErrUnsupported]), when the encoded argument exceeds the 64 MiB
// message limit, and when the child does not come up — for instance
// because main does not call [Main] first.
func (p *Process[R]) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errStartedTwice
	}
	if p.prepErr != nil {
		return p.prepErr
	}
	name := p.Name
	if name == "" {
		name = "Process-" + strconv.FormatInt(processCount.Add(1), 10)
	}
	ch, err := spawn(spawnOptions{
		name: name, env: p.Env, stdout: p.Stdout, stderr: p.Stderr,
		first:  &outgoing{serviceRun, wire.Message{Header: []byte(p.task.name), Raw: p.arg}},
		reaped: p.arrive,
	})
	if err != nil {
		return err
	}
	p.started, p.ch = true, ch
	go p.watch(ch.first)
	p.arrive()
	return nil
}

// watch waits for the task's reply and decodes it. It ends once the reply
// is in or the child is gone.
func (p *Process[R]) watch(cl *wire.Call) {
	ch := p.ch
	reply, err := ch.await(cl)
	if err == nil {
		p.result, err = p.decode(ch.conn, reply.Raw)
	}
	p.err = err
	// The reply is the child's last message, so the connection can close
	// while the child exits rather than after it has been reaped.
	ch.conn.Close()
	p.arrive()
}

// arrive records one of the three things pending counts; the last one
// completes the outcome and closes done.
func (p *Process[R]) arrive() {
	if p.pending.Add(-1) != 0 {
		return
	}
	ch := p.ch
	if errors.Is(p.err, wire.ErrConnLost) {
		p.err = ch.endError()
	}
	p.exitCode = ch.exitCode
	close(p.done)
}

// Join waits until the child has exited and been reaped, or ctx is done,
// and returns the outcome: nil, the task's error, a [*PanicError] if the
// task panicked, or an [*ExitError] if the child ended without delivering
// a result (os.Exit in the task, a signal, [Process.Kill]). It is the
// analogue of Python's Process.join and of [sync.WaitGroup.Wait]; ctx
// bounds only the wait: when it is done Join returns context.Cause(ctx)
// and the child keeps running. Join before Start returns an error.
func (p *Process[R]) Join(ctx context.Context) error {
	if !p.isStarted() {
		return errNotStarted
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Result returns the task's result and the error Join returns. It does not
// wait: before the child has exited it returns an error.
func (p *Process[R]) Result() (R, error) {
	select {
	case <-p.done:
		return p.result, p.err
	default:
		var zero R
		if !p.isStarted() {
			return zero, errNotStarted
		}
		return zero, errRunning
	}
}

// Terminate sends SIGTERM to the child's process group, as Python's
// Process.terminate: the child does not catch it, so it exits with code
// -15. It does nothing after the child has exited, and returns an error
// before Start.
func (p *Process[R]) Terminate() error { return p.signal(sigTerm) }

// Kill sends SIGKILL to the child's process group, as Python's
// Process.kill; the exit code is -9. It does nothing after the child has
// exited, and returns an error before Start.
func (p *Process[R]) Kill() error { return p.signal(sigKill) }

func (p *Process[R]) signal(sig signalKind) error {
	if !p.isStarted() {
		return errNotStarted
	}
	return p.ch.signal(sig)
}

// Alive reports whether the process has started and not yet exited, as
// Python's Process.is_alive.
func (p *Process[R]) Alive() bool {
	if !p.isStarted() {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid returns the child's process ID, or 0 before Start.
func (p *Process[R]) Pid() int {
	if !p.isStarted() {
		return 0
	}
	return p.ch.pid
}

// ExitCode returns the child's exit code once it has exited, as Python's
// Process.exitcode: 0 on success, 1 when the task returned an error or
// panicked (Python's exit code for a target that raised), N after
// os.Exit(N), and -N when a signal N killed it. The boolean is false while
// there is no exit code yet.
func (p *Process[R]) ExitCode() (int, bool) {
	select {
	case <-p.done:
		return p.exitCode, true
	default:
		return 0, false
	}
}

// Done returns a channel that is closed once the child has exited and been
// reaped and Join's outcome is known: the analogue of Python's
// Process.sentinel. The channel is the same before and after Start; it is
// never closed if Start is not called or fails.
func (p *Process[R]) Done() <-chan struct{} { return p.done }

// signalKind names the two signals Process sends, portably.
type signalKind int

const (
	sigTerm signalKind = iota
	sigKill
)

func (p *Process[R]) isStarted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}
