//go:build unix

package mp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

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
	parentPid = os.Getppid()
	mode := os.Getenv(envMode)
	for _, k := range []string{envChild, envName, envMode} {
		os.Unsetenv(k)
	}
	switch mode {
	case "worker":
		// Before the handshake, after which the parent counts this
		// process as a worker.
		ignoreInterrupt()
	case "spare":
		// Before the handshake, after which the parent lets the thread
		// that started this process end.
		clearParentDeathSignal()
	}
	// The connection must not leak into processes this child starts:
	// they would keep it open after this child died.
	syscall.CloseOnExec(childFD)
	c := wire.NewConn(&childStream{fd: childFD}, 0, errorCodec{})
	// Written directly rather than through c.w, whose goroutine would
	// have to be scheduled first: nothing else writes yet.
	if _, err := c.Stream.Write(wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindHello, Header: []byte(token)})); err != nil {
		os.Exit(70)
	}
	parentConn = c
	worker := mode == "worker"
	if mode == "spare" {
		worker = awaitTask(c)
	}
	serveChild(c, worker)
}

// ignoreInterrupt makes a pool worker ignore SIGINT: the parent owns
// cancellation, and a Ctrl-C at the terminal must not kill pool workers
// under their running tasks.
func ignoreInterrupt() {
	signal.Ignore(os.Interrupt)
}

// awaitTask is a spare's wait for the parent to make it a child: it reads
// the name, mode and environment that a child started afresh would have
// had, sets them, and reports whether it is to be a pool worker. It exits
// the process if the connection ends first: the parent died, or no longer
// wants the spare. The spare then serves its connection whatever its mode,
// since its end is what tells it that the parent died (see lifeline).
func awaitTask(c *wire.Conn) (worker bool) {
	// The spare serves once it has a task; moving to the poller now,
	// while nothing waits for it, takes the poller's set-up off the path
	// from the task's arrival to its reply.
	if lp, ok := c.Stream.(wire.LazyPoller); ok {
		lp.UsePoller()
	}
	assigned := false
	c.Handle(serviceSpare, func(req *wire.Request) {
		assigned = true
		h := req.Msg.Header
		if len(h) == 0 {
			os.Exit(70)
		}
		worker, current.name = h[0] == 'w', string(h[1:])
		for _, kv := range strings.Split(string(req.Msg.Raw), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				os.Setenv(k, v)
				if n, err := strconv.Atoi(v); k == "GOMAXPROCS" && err == nil && n > 0 {
					runtime.GOMAXPROCS(n)
				}
			}
		}
		if worker {
			ignoreInterrupt()
		}
		if !req.IsNotification() {
			// A worker's parent waits for this: from then on the
			// worker is what a worker started afresh would be.
			req.Reply(wire.Message{}, nil)
		}
	})
	for !assigned {
		f, err := c.ReadFrame()
		if err == nil {
			err = c.Dispatch(f)
		}
		if err != nil {
			os.Exit(0)
		}
	}
	lifeline = true
	return worker
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
// starts serving (UsePoller).
//
// A pool worker serves at once. A Process child reads its run request
// and, on Linux, serves only once its task uses a queue: until then the
// parent sends it nothing, and on Linux the parent-death signal, not the
// connection's end, is what ends it when the parent dies. A task that uses
// no queue so runs without the poller's set-up and without a reader
// goroutine and its thread, which BenchmarkProcessStartSmallProgram
// measures together with internal/stackstart. Blocking reads for good would do the same, but a reader blocked in read
// on its own thread needs the scheduler to hand it a processor for every
// frame, which makes the round trip of a pool worker
// (BenchmarkProcessPoolApplyAsync/pipeline=1) much slower.
type childStream struct {
	fd   int
	once sync.Once
	f    atomic.Pointer[os.File]        // set by UsePoller
	try  atomic.Pointer[wire.TryWriter] // writes through f; set by UsePoller
	rd   atomic.Pointer[io.Reader]      // reads through f; set by UsePoller
}

// A childStream must move to the poller when its connection serves: a
// reader blocked in read on a thread of its own makes every round trip of
// a pool worker much slower. The compiler checks that it can.
var _ wire.LazyPoller = (*childStream)(nil)

// Replies are written on the goroutine that makes them when the socket
// takes them at once; the compiler checks that a childStream can.
var _ wire.TryWriter = (*childStream)(nil)

// UsePoller moves the stream to the runtime's poller, once.
func (s *childStream) UsePoller() {
	s.once.Do(func() {
		// Should this fail, the file serves blocking, which is slower
		// but correct.
		_ = syscall.SetNonblock(s.fd, true)
		f := os.NewFile(uintptr(s.fd), "mp-parent")
		if rc, err := f.SyscallConn(); err == nil {
			t, r := wire.NewRawTryWriter(rc), wire.NewPollReader(rc)
			s.try.Store(&t)
			s.rd.Store(&r)
		}
		s.f.Store(f)
	})
}

// file returns the poller's file, moving to it first if need be.
func (s *childStream) file() *os.File {
	s.UsePoller()
	return s.f.Load()
}

func (s *childStream) Read(b []byte) (int, error) {
	if r := s.rd.Load(); r != nil {
		return (*r).Read(b)
	}
	if f := s.f.Load(); f != nil {
		return f.Read(b)
	}
	// Before UsePoller only the main goroutine reads (the run request),
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
			s.UsePoller()
		case err != nil:
			return written, err
		default:
			written += n
		}
	}
	return written, nil
}

// TryWrite writes what the socket takes at once, so that a reply goes out
// on the goroutine that made it (see wire.Writer).
func (s *childStream) TryWrite(bufs [][]byte) (int, error) {
	if t := s.try.Load(); t != nil {
		return (*t).TryWrite(bufs)
	}
	return wire.TrySend(s.fd, bufs)
}

func (s *childStream) Close() error                       { return s.file().Close() }
func (s *childStream) SetReadDeadline(t time.Time) error  { return s.file().SetReadDeadline(t) }
func (s *childStream) SetWriteDeadline(t time.Time) error { return s.file().SetWriteDeadline(t) }
