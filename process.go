package mp

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// Main must be the first statement of main and of TestMain:
//
//	func main() {
//		mp.Main()
//		...
//	}
//
//	func TestMain(m *testing.M) {
//		mp.Main()
//		os.Exit(m.Run())
//	}
//
// In a process that mp started as a child, Main serves the parent — it
// runs the task the parent asks for — and then exits the process; it never
// returns, so the rest of main, and in a test binary every test, does not
// run in a child. In any other process Main returns at once. The child is
// recognised by environment variables that Main reads and removes, so the
// user's flags and environment are what the child's code sees.
//
// The environment variables are MP_CHILD_TOKEN, MP_CHILD_NAME and
// MP_CHILD_MODE, and they alone do not make a child: fd 3 must also be the
// socket of the mp parent that started the process, which proves itself by
// a token it writes there before the child starts and, on Linux, by having
// made the socket. In a process where the variables are set but fd 3 is
// anything else (closed, a file, a pipe, a socket to another program) —
// they were copied into a shell or a container's settings, say — Main runs
// no task: it writes an "mp: ..." message naming the variables to unset to
// stderr and exits with status 70. The check never waits for fd 3.
//
// Main is the Go twin of Python's `if __name__ == "__main__":` guard: a
// child is a fresh run of the same binary, and package initialisation,
// including [Register] calls, runs again in it before Main. A program that
// forgets Main gets an error from [Process.Start] that names mp.Main, and
// its children cannot start children of their own, so there is no fork
// bomb.
func Main() {
	if mainCalled.Swap(true) {
		return
	}
	runChildIfAsked()
}

// ProcessInfo describes a process, as Python's multiprocessing
// current_process() and os.getpid() do.
type ProcessInfo struct {
	// Name is "MainProcess" in a process that mp did not start, and the
	// child's [Process] Name (by default "Process-N") in a child.
	Name string
	// Pid and ParentPid are the process IDs of the process and its parent.
	Pid, ParentPid int
	// IsChild reports whether mp started this process.
	IsChild bool
}

// current is what a child learned about itself from its parent in Main.
var current struct {
	name    string
	isChild bool
}

// CurrentProcess describes the calling process. It is the analogue of
// Python's multiprocessing.current_process().
func CurrentProcess() ProcessInfo {
	info := ProcessInfo{Name: "MainProcess", Pid: os.Getpid(), ParentPid: os.Getppid()}
	if current.isChild {
		info.Name, info.IsChild = current.name, true
	}
	return info
}

// helloTimeout bounds the wait for a new child's handshake. A child that
// does not answer in time is not running Main.
var helloTimeout = 10 * time.Second

// serviceRun is the child-side service that runs a registered task.
const serviceRun = "mp.run"

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
// other Unix systems because the child exits when its connection to the
// parent closes. [Process.Terminate] and [Process.Kill] reach the child's
// whole process group, so programs the task started die too.
//
// Start starts the child and two goroutines, one waiting for the task's
// reply and one for the child's exit; they end once the child has exited
// and been reaped, so every child is reaped whether or not anyone calls
// Join. The child's standard input is /dev/null. The child leads its own
// process group, so a Ctrl-C at the terminal reaches only the parent; the
// children then die with it.
//
// Starting a child and collecting a trivial task's result takes 1.4 to 1.5
// times as long as exec'ing and reaping a minimal static Go binary, about
// 1.7 ms in a small program where that exec takes 1.2 ms
// (BenchmarkProcessStartSmallProgram, 2-core AMD EPYC). Most of the
// difference is the initialisation of the packages the program links,
// encoding/gob's above all, which every child runs again. Python's fork
// start method takes 1.7 ms there and spawn 48 ms.
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
	decode  func(*conn, []byte) (R, error)

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
		p.prepErr = frameTooLarge(size, wire.DefaultMaxFrame)
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
		first:  &outgoing{serviceRun, message{header: []byte(p.task.name), raw: p.arg}},
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
func (p *Process[R]) watch(cl *call) {
	ch := p.ch
	reply, err := ch.await(cl)
	if err == nil {
		p.result, err = p.decode(ch.conn, reply.raw)
	}
	p.err = err
	// The reply is the child's last message, so the connection can close
	// while the child exits rather than after it has been reaped.
	ch.conn.close()
	p.arrive()
}

// arrive records one of the three things pending counts; the last one
// completes the outcome and closes done.
func (p *Process[R]) arrive() {
	if p.pending.Add(-1) != 0 {
		return
	}
	ch := p.ch
	if errors.Is(p.err, errLost) {
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

// The machinery below is shared with the process pool and the
// cross-process queues:
//
//   - spawn starts a child (a Process child, or with worker set a pool
//     worker that serves runs until its connection closes) and returns a
//     *child: its pid, its conn, done (closed once reaped) and exitError.
//   - child.conn.start(serviceRun, message{header: entry.name, raw: arg})
//     runs a registered task; a worker runs such requests one at a time in
//     arrival order, so they may be pipelined. call.wait, or call.abandon,
//     which cancels the task's ctx in the child.
//   - parentHooks and childHooks register services on every connection,
//     for example a queue broker in the parent; parentConn is a child's
//     connection to its parent.
//   - codec[T].encodeOn and decodeOn encode values for one connection, so
//     that gob types are described once per connection.

// spawnOptions configure a child.
type spawnOptions struct {
	name           string
	env            []string
	stdout, stderr io.Writer
	// worker makes the child serve runs until its connection closes, for
	// a process pool; otherwise it serves one run and exits.
	worker bool
	// setup registers parent-side services on the child's connection
	// before it starts serving (for example a queue broker).
	setup func(*child)
	// reaped, if set, is called once the child has been reaped, after
	// done is closed: also when spawn fails after starting the child.
	reaped func()
	// first, if set, is a request sent as soon as the child is started,
	// before its handshake arrives, so that the child finds it waiting;
	// spawn returns its call as child.first.
	first *outgoing
}

// outgoing is a request to a service.
type outgoing struct {
	service string
	msg     message
}

// child is a started child process, seen from its parent.
type child struct {
	pid    int
	name   string
	worker bool // spawnOptions.worker
	conn   *conn
	cmd    *exec.Cmd

	// first is the call of spawnOptions.first.
	first *call
	tail  *tailWriter // nil unless stderr is captured

	done     chan struct{} // closed once the child has been reaped
	exitCode int           // valid once done is closed
	onReaped func()        // spawnOptions.reaped

	mu       sync.Mutex
	reaped   bool  // under mu: no more signals, the pid may be reused
	protoErr error // under mu: the child broke the protocol and is being killed
}

// parentHooks run for every child, before its connection serves; other
// parts of mp add to it from init to register their parent-side services.
var parentHooks []func(*child)

// childHooks run in a child, before its connection to the parent serves;
// other parts of mp add to it from init to register child-side services.
// worker tells a process-pool worker from a Process child.
var childHooks []func(c *conn, worker bool)

// childRunDone run in a child after each task returns and before its
// reply is sent, so that state the task left behind (a queue proxy's
// unsent acknowledgements) reaches the parent before the reply does. An
// error one returns fails a task that succeeded: a queue's Puts that the
// parent refused after they had returned are reported no later than that.
var childRunDone []func() error

// parentConn is a child's connection to its parent; nil in a process mp
// did not start.
var parentConn *conn

// await waits for the reply to cl. If the child exits without replying it
// waits briefly for a reply still in the socket, then gives up with an
// error wrapping errLost.
func (ch *child) await(cl *call) (message, error) {
	select {
	case <-cl.done:
	case <-ch.done:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		select {
		case <-cl.done:
		case <-ctx.Done():
			ch.conn.close()
			<-cl.done
		}
	}
	return cl.reply, cl.err
}

// endError says why the child ended without replying, as far as the
// parent saw it; call it once done is closed. The protocol error counts
// only if the kill it brought about is what ended the child: a child that
// exited, or died of another signal, before the kill reached it is
// reported as having done that, so that the message never claims a kill
// that did not happen.
func (ch *child) endError() error {
	ch.mu.Lock()
	perr := ch.protoErr
	ch.mu.Unlock()
	if perr != nil && ch.exitCode == -9 { // SIGKILL
		return perr
	}
	return ch.exitError()
}

// exitError describes how the child ended; call it once done is closed.
func (ch *child) exitError() *ExitError {
	e := &ExitError{Pid: ch.pid, ExitCode: ch.exitCode, worker: ch.worker}
	if ch.tail != nil {
		e.Stderr = ch.tail.bytes()
	}
	return e
}

// tailWriter keeps the last tailSize bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4 << 10

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tailWriter) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
