//go:build unix

package mp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// The environment variables that make a process a child. Main reads and
// removes them.
const (
	envChild = "MP_CHILD_TOKEN" // the child's token; its presence marks a child
	envName  = "MP_CHILD_NAME"  // the name CurrentProcess reports
	envMode  = "MP_CHILD_MODE"  // "process" (one task, then exit) or "worker" (serve until closed)
)

// The child's end of the connection is this file descriptor: the first of
// exec.Cmd.ExtraFiles.
const childFD = 3

// errForgotMain is returned when a process that mp started as a child
// tries to start processes itself without having called Main: its main
// is running where only Main should, and letting it spawn would be a fork
// bomb.
var errForgotMain = errors.New("mp: this process was started by mp as a child, but main did not call mp.Main(); call mp.Main() first in main and in TestMain")

// spawn starts a child running this binary and completes the handshake.
// On success the connection is serving and a goroutine reaps the child
// (closing done); every started child is reaped, including on failure.
func spawn(o spawnOptions) (*child, error) {
	if _, ok := os.LookupEnv(envChild); ok {
		return nil, errForgotMain
	}
	exe := "/proc/self/exe"
	if runtime.GOOS != "linux" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("mp: cannot find this program's executable: %w", err)
		}
	}
	parentFD, childFD, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("mp: socketpair: %w", err)
	}
	childEnd := os.NewFile(uintptr(childFD), "mp-child")
	// The token only has to be unpredictable enough that a stray fd 3
	// cannot pass for our socket; math/rand/v2 is seeded from the system
	// and spares children the start-up cost of crypto's packages.
	var tok [16]byte
	for i := range tok {
		tok[i] = byte(rand.Uint32())
	}
	token := hex.EncodeToString(tok[:])
	// The token goes ahead of everything else on the socket, and before
	// the child exists, so that the child finds it waiting and need never
	// block to tell our socket from a stray fd 3 (see checkParent). A
	// fresh socket's buffer takes it without blocking.
	if _, err := syscall.Write(parentFD, []byte(token)); err != nil {
		childEnd.Close()
		syscall.Close(parentFD)
		return nil, fmt.Errorf("mp: socketpair: %w", err)
	}
	mode := "process"
	if o.worker {
		mode = "worker"
	}

	ch := &child{name: o.name, worker: o.worker, done: make(chan struct{}), onReaped: o.reaped}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        os.Args,
		Env:         append(append(childEnviron(), o.env...), envChild+"="+token, envName+"="+o.name, envMode+"="+mode),
		Stdout:      o.stdout,
		Stderr:      o.stderr,
		ExtraFiles:  []*os.File{childEnd},
		SysProcAttr: sysProcAttr(),
		// A descendant that inherited a captured stdout or stderr must
		// not keep Wait from returning once the child itself is gone.
		WaitDelay: time.Second,
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	} else {
		ch.tail = &tailWriter{}
		cmd.Stderr = io.MultiWriter(o.stderr, ch.tail)
	}
	if _, set := os.LookupEnv("GORACE"); raceEnabled && !set {
		// The race runtime pauses a second at exit by default, which
		// would make every child of a -race binary take a second.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	ch.cmd = cmd
	err = startOnSpawner(cmd)
	if err == nil {
		// Set after the fork, off the path from Start to the child
		// running; the child's end is set through our copy of it.
		setSockBuf(parentFD)
		setSockBuf(childFD)
	}
	// Only the child may hold its end, so that its death is our EOF.
	childEnd.Close()
	if err != nil {
		syscall.Close(parentFD)
		return nil, fmt.Errorf("mp: starting child process: %w", err)
	}
	ch.pid = cmd.Process.Pid
	go ch.reap()
	// The connection is set up while the child starts, which takes far
	// longer.
	parentEnd, err := pollableEnd(parentFD, "mp-parent")
	if err != nil {
		ch.signal(sigKill)
		<-ch.done
		return nil, fmt.Errorf("mp: socketpair: %w", err)
	}
	ch.conn = newConn(parentEnd, 0)
	if o.first != nil {
		// Sent before the handshake: the request waits in the socket
		// while the child starts, which saves a round trip.
		if ch.first, err = ch.conn.start(o.first.service, o.first.msg); err != nil {
			ch.signal(sigKill)
			<-ch.done
			ch.conn.close()
			return nil, err
		}
	}

	if err := ch.handshake(token); err != nil {
		ch.signal(sigKill)
		<-ch.done
		ch.conn.close()
		return nil, err
	}
	ch.conn.onBreak = func(cause error) {
		// A child that sends a malformed or oversized frame is dropped:
		// it is killed, and its owner reports the protocol error.
		var what string
		switch {
		case errors.Is(cause, wire.ErrMalformed):
			what = "a malformed"
		case errors.Is(cause, wire.ErrTooLarge):
			what = "an oversized"
		default:
			return
		}
		ch.mu.Lock()
		ch.protoErr = fmt.Errorf("mp: process %d sent %s frame and was killed: %w", ch.pid, what, cause)
		ch.mu.Unlock()
		ch.signal(sigKill)
	}
	for _, hook := range parentHooks {
		hook(ch)
	}
	if o.setup != nil {
		o.setup(ch)
	}
	ch.conn.serve()
	return ch, nil
}

// childEnviron is this process's environment without mp's child markers.
func childEnviron() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MP_CHILD_") {
			out = append(out, kv)
		}
	}
	return out
}

// handshake reads the child's hello: the token proves that the child runs
// Main and that fd 3 is our socket.
func (ch *child) handshake(token string) error {
	forgot := "; a program that starts processes must call mp.Main() first in main (and in TestMain)"
	ch.conn.nc.SetReadDeadline(time.Now().Add(helloTimeout))
	// A child that exits early normally gives EOF, but not if it passed
	// the socket on to a process of its own; its exit ends the wait too.
	stop := make(chan struct{})
	go func() {
		select {
		case <-ch.done:
			// Not "now": a hello already in the socket must still be
			// read, and a deadline in the past fails reads at once.
			ch.conn.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		case <-stop:
		}
	}()
	f, err := ch.conn.readFrame()
	close(stop)
	ch.conn.nc.SetReadDeadline(time.Time{})
	exited := false
	select {
	case <-ch.done:
		exited = true
	default:
	}
	switch {
	case err != nil && (err == io.EOF || exited):
		<-ch.done
		return fmt.Errorf("mp: child process %d exited with status %d before its handshake%s", ch.pid, ch.exitCode, forgot)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("mp: child process %d did not answer within %v and was killed%s", ch.pid, helloTimeout, forgot)
	case err != nil:
		return fmt.Errorf("mp: handshake with child process %d: %w", ch.pid, err)
	case f.Kind != kindHello || string(f.Header) != token:
		return fmt.Errorf("mp: child process %d sent a bad handshake", ch.pid)
	}
	return nil
}

// reap waits for the child to exit, records its exit code and closes done.
func (ch *child) reap() {
	// Block until the child is waitable without reaping it, so that
	// signal, which holds mu, never signals a reaped pid that the system
	// may have reused.
	blockUntilWaitable(ch.pid)
	ch.mu.Lock()
	ch.reaped = true
	ch.mu.Unlock()
	_ = ch.cmd.Wait() // the exit status is in ProcessState
	ch.exitCode = exitCode(ch.cmd.ProcessState)
	releaseSpawner()
	close(ch.done)
	if ch.onReaped != nil {
		ch.onReaped()
	}
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return ps.ExitCode()
}

// signal sends sig to the child's process group. It does nothing once the
// child is gone.
func (ch *child) signal(sig signalKind) error {
	s := syscall.SIGTERM
	if sig == sigKill {
		s = syscall.SIGKILL
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.reaped {
		return nil
	}
	err := syscall.Kill(-ch.pid, s)
	if err == syscall.ESRCH {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mp: signal process %d: %w", ch.pid, err)
	}
	return nil
}

// sockBuf is the send buffer asked for on each end of a child's socket.
// The default (about 200 KiB on Linux) holds a fifth of a 1 MiB queue
// item, so the sender stalls while the receiver allocates and clears the
// slice the item will be read into; with room for a few items the two
// overlap (BenchmarkXQueueLargeItems, same-run medians: 1.11–1.25 →
// 1.28–1.30 GB/s; 1 and 2 MiB did no better than 4 MiB). The kernel
// caps it at net.core.wmem_max and charges only for bytes in flight;
// failure to set it only costs speed.
const sockBuf = 4 << 20

// pollableEnd makes the parent's end of a child's socket pair
// non-blocking, so that the runtime's poller serves it, and wraps it in a
// file. It runs after the fork, off the path from Start to the child
// running. (A child moves its end to the poller only when it needs to:
// see childStream.)
func pollableEnd(fd int, name string) (*os.File, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// setSockBuf asks for sockBuf bytes of send buffer on fd; failure only
// costs speed.
func setSockBuf(fd int) {
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sockBuf)
}

// The spawner is one goroutine locked to its OS thread for its whole life,
// through which every child is started. On Linux the parent-death signal
// fires when the *thread* that forked the child exits, not the process
// (golang/go#27505), so forking from arbitrary goroutines, whose threads
// the runtime may retire, could kill children early. The spawner runs
// while any child it started is unreaped, and for spawnerLinger after the
// last one is reaped, so that an idle program keeps no extra goroutine or
// thread for long, while a program that starts children one after another
// does not pay for a new thread (and the exit of the old one) each time.
var spawner struct {
	mu   sync.Mutex
	live int // children started and not yet reaped, plus starts in progress
	reqs chan func()
	// idleSince is when live last dropped to 0. Only the spawner looks at
	// the clock that ends it, so that reaping a child, on the way to Join
	// returning, does not touch a timer.
	idleSince time.Time
}

// spawnerLinger is how long the spawner outlives the last child it
// started, give or take as much again: while it runs, it looks every
// spawnerLinger whether it is still needed. Creating its thread costs
// about 100 µs, so a program that starts children further apart than
// this spends at most a fifth of a percent of its time on that. Twice
// the linger is well below the 430 ms that goleak waits for goroutines
// to end.
const spawnerLinger = 50 * time.Millisecond

func startOnSpawner(cmd *exec.Cmd) error {
	spawner.mu.Lock()
	if spawner.reqs == nil {
		spawner.reqs = make(chan func())
		go spawnerLoop(spawner.reqs)
	}
	spawner.live++
	reqs := spawner.reqs
	spawner.mu.Unlock()
	errc := make(chan error, 1)
	reqs <- func() { errc <- cmd.Start() }
	err := <-errc
	if err != nil {
		releaseSpawner()
	}
	return err
}

// releaseSpawner is called once per start that failed or child reaped.
func releaseSpawner() {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	spawner.live--
	if spawner.live == 0 {
		spawner.idleSince = time.Now()
	}
}

func spawnerLoop(reqs <-chan func()) {
	// Never unlocked: when this goroutine returns, its thread exits with
	// it, which is safe only because no child it started is still alive.
	runtime.LockOSThread()
	tick := time.NewTicker(spawnerLinger)
	defer tick.Stop()
	for {
		select {
		case f := <-reqs:
			f()
		case <-tick.C:
			spawner.mu.Lock()
			if spawner.live == 0 && time.Since(spawner.idleSince) >= spawnerLinger {
				// Under mu, so that no start can be handed to this
				// spawner any more; the next one starts a new spawner.
				spawner.reqs = nil
				spawner.mu.Unlock()
				return
			}
			spawner.mu.Unlock()
		}
	}
}

// runChildIfAsked is Main's work in a child: it connects to the parent,
// serves it and exits. It returns only in a process that is not a child.
func runChildIfAsked() {
	token, ok := os.LookupEnv(envChild)
	if !ok {
		return
	}
	if err := checkParent(token); err != nil {
		fmt.Fprintf(os.Stderr, "mp: %s is set in the environment, but no mp parent is on fd %d: %v; unset %s, %s and %s: mp sets them only in the children it starts\n",
			envChild, childFD, err, envChild, envName, envMode)
		os.Exit(70)
	}
	current.name, current.isChild = os.Getenv(envName), true
	worker := os.Getenv(envMode) == "worker"
	if worker {
		// The parent owns cancellation: a Ctrl-C at the terminal must not
		// kill pool workers under its running tasks.
		signal.Ignore(os.Interrupt)
	}
	for _, k := range []string{envChild, envName, envMode} {
		os.Unsetenv(k)
	}
	// The connection must not leak into processes this child starts:
	// they would keep it open after this child died.
	syscall.CloseOnExec(childFD)
	c := newConn(&childStream{fd: childFD}, 0)
	// Written directly rather than through c.w, whose goroutine would
	// have to be scheduled first: nothing else writes yet.
	if _, err := c.nc.Write(wire.AppendFrame(nil, &wire.Frame{Kind: kindHello, Header: []byte(token)})); err != nil {
		os.Exit(70)
	}
	parentConn = c
	serveChild(c, worker)
}

// checkParent reports whether fd 3 is the socket of the mp parent that
// started this process: the parent wrote token there before starting it.
// The environment alone proves nothing, since it can be copied to any
// process, and a stray fd 3 may be a file, a terminal, a pipe that never
// delivers, or a socket to anything. The read never blocks: a parent's
// token is already waiting, so whatever is not is refused at once.
func checkParent(token string) error {
	b := make([]byte, len(token))
	for {
		n, _, err := syscall.Recvfrom(childFD, b, syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EBADF:
			return errors.New("fd 3 is not open")
		case err == syscall.ENOTSOCK:
			return errors.New("fd 3 is not a socket")
		case err == syscall.EAGAIN:
			return errors.New("fd 3 had nothing to read")
		case err != nil:
			return fmt.Errorf("reading fd 3: %w", err)
		case n == 0 || string(b[:n]) != token:
			return errors.New("fd 3 did not send this process's token")
		}
		return peerIsParent(childFD)
	}
}

// childStream is a child's end of its connection to the parent. It starts
// as the blocking descriptor the parent passed, used with plain system
// calls, and moves to the runtime's poller for good when the connection
// starts serving (usePoller).
//
// A pool worker serves at once. A Process child reads its run request
// and, on Linux, serves only once its task uses a queue: until then the
// parent sends it nothing, and on Linux the parent-death signal, not the
// connection's end, is what ends it when the parent dies. A task that uses
// no queue so runs without the poller's set-up and without a reader
// goroutine and its thread. With internal/stackstart this took starting a
// process from 1.50 to 1.43 times a minimal exec (the program of
// BenchmarkProcessStartSmallProgram built with -trimpath, runs of 20
// alternated with the build before); each alone is within the noise.
// Blocking reads for good would do the same, but a reader blocked in read
// on its own thread needs the scheduler to hand it a processor for every
// frame, which more than doubled the round trip of
// ProcessPoolApplyAsync/pipeline=1.
type childStream struct {
	fd   int
	once sync.Once
	f    atomic.Pointer[os.File] // set by usePoller
}

func (s *childStream) usePoller() {
	s.once.Do(func() {
		// Should this fail, the file serves blocking, which is slower
		// but correct.
		_ = syscall.SetNonblock(s.fd, true)
		s.f.Store(os.NewFile(uintptr(s.fd), "mp-parent"))
	})
}

// file returns the poller's file, moving to it first if need be.
func (s *childStream) file() *os.File {
	s.usePoller()
	return s.f.Load()
}

func (s *childStream) Read(b []byte) (int, error) {
	if f := s.f.Load(); f != nil {
		return f.Read(b)
	}
	// Before usePoller only the main goroutine reads (the run request),
	// and nothing moves the descriptor to the poller while it does.
	for {
		n, err := syscall.Read(s.fd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (s *childStream) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		f := s.f.Load()
		if f != nil {
			n, err := f.Write(b[written:])
			return written + n, err
		}
		n, err := syscall.Write(s.fd, b[written:])
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			// Another goroutine moved the descriptor to the poller
			// while this write was under way: go on through it.
			s.usePoller()
		case err != nil:
			return written, err
		default:
			written += n
		}
	}
	return written, nil
}

func (s *childStream) Close() error                       { return s.file().Close() }
func (s *childStream) SetReadDeadline(t time.Time) error  { return s.file().SetReadDeadline(t) }
func (s *childStream) SetWriteDeadline(t time.Time) error { return s.file().SetWriteDeadline(t) }

// serveChild serves the parent on c and never returns. Run requests are
// queued and run one at a time in arrival order, so a parent may pipeline
// them. A Process child (worker false) exits 0 once it has delivered its
// one reply; a worker serves until the parent closes the connection.
// Once the connection serves (at once in a worker; see childStream for a
// Process child), losing it — the parent closed it, died, or sent
// garbage — ends the process at once: the connection is the child's
// lifeline. It then exits 0 when no task was running and 1 otherwise.
func serveChild(c *conn, worker bool) {
	var (
		mu      sync.Mutex
		queue   []*request
		ready   = make(chan struct{}, 1)
		running atomic.Bool
	)
	c.handle(serviceRun, func(req *request) {
		mu.Lock()
		queue = append(queue, req)
		mu.Unlock()
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	c.onBreak = func(error) {
		if running.Load() {
			os.Exit(1)
		}
		os.Exit(0)
	}
	for _, hook := range childHooks {
		hook(c, worker)
	}
	if !worker {
		// A Process child's run request was sent before the handshake,
		// so it is waiting already: reading it here, before the reader
		// goroutine starts, spares a switch to that goroutine and back
		// on the way to the task.
		for len(ready) == 0 {
			f, err := c.readFrame()
			if err == nil {
				err = c.dispatch(f)
			}
			if err != nil {
				c.fail(err) // exits through onBreak
			}
		}
	}
	if worker || !parentDeathSignal {
		c.serve()
	}
	for {
		<-ready
		for {
			mu.Lock()
			if len(queue) == 0 {
				mu.Unlock()
				break
			}
			req := queue[0]
			queue = queue[1:]
			mu.Unlock()
			running.Store(true)
			res, err := runRequest(req)
			for _, hook := range childRunDone {
				if herr := hook(); herr != nil && err == nil {
					res, err = message{}, herr
				}
			}
			if !worker {
				// The parent may close the connection once it has the
				// reply, which ends this process through onBreak: with
				// the status it would have had anyway.
				running.Store(err != nil)
				req.replyLast(res, err)
				// As in Python, where a target that raises leaves exit code
				// 1, a task that failed or panicked exits with status 1;
				// the parent has its error already.
				if err != nil {
					os.Exit(1)
				}
				os.Exit(0)
			}
			req.reply(res, err)
			running.Store(false)
		}
	}
}

// runRequest runs the registered task a run request names. A plain
// request asks for a reply that does not use the connection's gob types
// (see RunRequest).
func runRequest(req *request) (message, error) {
	name, plain := strings.CutSuffix(string(req.msg.header), plainMark)
	name, batch := strings.CutSuffix(name, batchMark)
	c := req.c
	if plain {
		c = nil
	}
	raw, err := runEncoded(req.ctx, c, name, batch, req.msg.raw)
	return message{raw: raw}, err
}
