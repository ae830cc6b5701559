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
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// The environment variables that make a process a child. Main reads and
// removes them.
const (
	envChild = "MP_CHILD_TOKEN" // the child's token; its presence marks a child
	envName  = "MP_CHILD_NAME"  // the name CurrentProcess reports
	envMode  = "MP_CHILD_MODE"  // "process" (one task, then exit), "worker" (serve until closed) or "spare" (wait to be told which)
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
// (closing done); every started child is reaped, including on failure. A
// start that a spare child can honour takes one (see spares_unix.go).
func spawn(o spawnOptions) (*child, error) {
	if _, ok := os.LookupEnv(envChild); ok {
		return nil, errForgotMain
	}
	if ch := spares.take(o); ch != nil {
		return ch, nil
	}
	ch, parentFD, token, err := startChild(o)
	if err != nil {
		return nil, err
	}
	addChild(ch)
	go ch.reap()
	if err := ch.connect(parentFD, token, o.first); err != nil {
		ch.signal(sigKill)
		<-ch.done
		if ch.conn != nil {
			ch.conn.Close()
		}
		return nil, err
	}
	ch.serve()
	// Only after a start that worked: a program whose children fail
	// their handshake (it forgot Main) must not run again in a spare.
	if spares.on() {
		spares.refill(currentSetting())
	}
	return ch, nil
}

// startChild starts the process of a child, on the spawner thread, and
// returns it with the parent's end of its socket and the token the child
// will answer with.
func startChild(o spawnOptions) (ch *child, parentFD int, token string, err error) {
	exe, err := executable()
	if err != nil {
		return nil, 0, "", err
	}
	parentFD, childFD, token, err := openChildSocket()
	if err != nil {
		return nil, 0, "", err
	}
	ch = &child{name: o.name, worker: o.worker, done: make(chan struct{}), onReaped: o.reaped, holdsSpawner: true}
	// The child's end, which only the child may hold, so that its death
	// is our EOF: this copy is closed once the child has its own.
	childEnd := os.NewFile(uintptr(childFD), "mp-child")
	ch.cmd = childCmd(o, ch, exe, token, childEnd)
	err = startOnSpawner(ch.cmd)
	if err == nil {
		// Set after the fork, off the path from Start to the child
		// running; the child's end is set through our copy of it.
		setSockBuf(parentFD)
		setSockBuf(childFD)
	}
	childEnd.Close()
	if err != nil {
		syscall.Close(parentFD)
		return nil, 0, "", fmt.Errorf("mp: starting child process: %w", err)
	}
	ch.pid = ch.cmd.Process.Pid
	return ch, parentFD, token, nil
}

// serve runs the parent's hooks on a child's connection and starts serving
// it.
func (ch *child) serve() {
	ch.conn.OnBreak = ch.protocolBroken
	for _, hook := range parentHooks {
		hook(ch)
	}
	ch.conn.Serve()
}

// executable returns the path a child re-execs: /proc/self/exe on Linux,
// which stays right if the file is replaced meanwhile.
func executable() (string, error) {
	if runtime.GOOS == "linux" {
		return "/proc/self/exe", nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("mp: cannot find this program's executable: %w", err)
	}
	return exe, nil
}

// openChildSocket makes the socket pair of a new child, with the token
// by which the child will know its parent already written on the parent's
// end.
func openChildSocket() (parentFD, childFD int, token string, err error) {
	parentFD, childFD, err = socketPair()
	if err != nil {
		return 0, 0, "", fmt.Errorf("mp: socketpair: %w", err)
	}
	// The token only has to be unpredictable enough that a stray fd 3
	// cannot pass for our socket; math/rand/v2 is seeded from the system
	// and spares children the start-up cost of crypto's packages.
	var tok [16]byte
	for i := range tok {
		tok[i] = byte(rand.Uint32())
	}
	token = hex.EncodeToString(tok[:])
	// The token goes ahead of everything else on the socket, and before
	// the child exists, so that the child finds it waiting and need never
	// block to tell our socket from a stray fd 3 (see checkParent). A
	// fresh socket's buffer takes it without blocking.
	if _, err := syscall.Write(parentFD, []byte(token)); err != nil {
		syscall.Close(childFD)
		syscall.Close(parentFD)
		return 0, 0, "", fmt.Errorf("mp: socketpair: %w", err)
	}
	return parentFD, childFD, token, nil
}

// childCmd returns the command that starts ch: this program again, with
// the child's end of its socket as fd 3 and the markers Main reads.
func childCmd(o spawnOptions, ch *child, exe, token string, childEnd *os.File) *exec.Cmd {
	mode := "process"
	switch {
	case o.spare:
		mode = "spare"
	case o.worker:
		mode = "worker"
	}
	now := o.inherit
	if now == nil {
		now = &setting{env: childEnviron(), args: os.Args, stdout: os.Stdout, stderr: os.Stderr}
	}
	cmd := &exec.Cmd{
		Path: exe,
		Args: now.args,
		// A fresh slice: now.env may be a spare's, shared by starts
		// under way on other goroutines.
		Env:         slices.Concat(now.env, o.env, []string{envChild + "=" + token, envName + "=" + o.name, envMode + "=" + mode}),
		Stdout:      o.stdout,
		Stderr:      o.stderr,
		ExtraFiles:  []*os.File{childEnd},
		SysProcAttr: sysProcAttr(),
		// A descendant that inherited a captured stdout or stderr must
		// not keep Wait from returning once the child itself is gone.
		WaitDelay: time.Second,
	}
	if cmd.Stdout == nil {
		cmd.Stdout = now.stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = now.stderr
	} else {
		ch.tail = &tailWriter{}
		cmd.Stderr = io.MultiWriter(o.stderr, ch.tail)
	}
	if _, set := os.LookupEnv("GORACE"); raceEnabled && !set {
		// The race runtime pauses a second at exit by default, which
		// would make every child of a -race binary take a second.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	return cmd
}

// connect sets up the connection to a started child, sends it first (if
// any), and waits for its handshake. The connection is set up while the
// child starts, which takes far longer.
func (ch *child) connect(parentFD int, token string, first *outgoing) error {
	parentEnd, err := pollableEnd(parentFD, "mp-parent")
	if err != nil {
		return fmt.Errorf("mp: socketpair: %w", err)
	}
	ch.conn = wire.NewConn(parentEnd, 0, errorCodec{})
	if first != nil {
		// Sent before the handshake: the request waits in the socket
		// while the child starts, which saves a round trip.
		if ch.first, err = ch.conn.Start(first.service, first.msg); err != nil {
			return err
		}
	}
	return ch.handshake(token)
}

// protocolBroken is the OnBreak of a child's connection: a child that
// sends a malformed or oversized frame is dropped, killed, and its owner
// reports the protocol error.
func (ch *child) protocolBroken(cause error) {
	var what string
	switch {
	case errors.Is(cause, wire.ErrMalformed):
		what = "a malformed"
	case errors.Is(cause, wire.ErrTooLarge):
		what = "an oversized"
	default:
		return
	}
	ch.dropForProtocol(fmt.Errorf("mp: process %d sent %s frame and was killed: %w", ch.pid, what, cause))
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
	ch.conn.Stream.SetReadDeadline(time.Now().Add(helloTimeout))
	// A child that exits early normally gives EOF, but not if it passed
	// the socket on to a process of its own; its exit ends the wait too.
	stop := make(chan struct{})
	go func() {
		select {
		case <-ch.done:
			// Not "now": a hello already in the socket must still be
			// read, and a deadline in the past fails reads at once.
			ch.conn.Stream.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		case <-stop:
		}
	}()
	f, err := ch.conn.ReadFrame()
	close(stop)
	ch.conn.Stream.SetReadDeadline(time.Time{})
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
	case f.Kind != wire.KindHello || string(f.Header) != token:
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
	if ch.holdsSpawner {
		releaseSpawner()
	}
	removeChild(ch)
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
// overlap, which BenchmarkXQueueLargeItems measures; 1 and 2 MiB do no
// better than 4 MiB. The kernel
// caps it at net.core.wmem_max and charges only for bytes in flight;
// failure to set it only costs speed.
const sockBuf = 4 << 20

// pollableEnd makes the parent's end of a child's socket pair a stream
// that the runtime's poller serves (see wire.ParentEnd; on Linux, one
// whose caller may read a reply itself). It runs after the fork, off the
// path from Start to the child running. (A child moves its end to the
// poller only when it needs to: see childStream.)
func pollableEnd(fd int, name string) (wire.Stream, error) {
	return wire.ParentEnd(fd, name)
}

// setSockBuf asks for sockBuf bytes of send buffer on fd; failure only
// costs speed.
func setSockBuf(fd int) {
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sockBuf)
}
