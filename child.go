package mp

import (
	"bytes"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/wire"

	// Every process mp starts runs package initialisation again;
	// stackstart makes that faster (see its documentation).
	_ "github.com/mpgo/mp/internal/stackstart"
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

// lifeline reports whether this child must serve its connection even as
// a Process child on Linux: a child that began as a spare has no
// parent-death signal, and the connection's end is what ends it when the
// parent dies.
var lifeline bool

// serveChild serves the parent on c and never returns. Run requests are
// queued and run one at a time in arrival order, so a parent may pipeline
// them. A Process child (worker false) exits 0 once it has delivered its
// one reply; a worker serves until the parent closes the connection.
// Once the connection serves (at once in a worker; see childStream for a
// Process child), losing it — the parent closed it, died, or sent
// garbage — ends the process at once: the connection is the child's
// lifeline. It then exits 0 when no task was running and 1 otherwise.
func serveChild(c *wire.Conn, worker bool) {
	var (
		mu      sync.Mutex
		queue   []*wire.Request
		ready   = make(chan struct{}, 1)
		running atomic.Bool
	)
	c.Handle(serviceRun, func(req *wire.Request) {
		mu.Lock()
		queue = append(queue, req)
		mu.Unlock()
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	c.OnBreak = func(error) {
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
			f, err := c.ReadFrame()
			if err == nil {
				err = c.Dispatch(f)
			}
			if err != nil {
				c.Fail(err) // exits through onBreak
			}
		}
	}
	if worker || !parentDeathSignal || lifeline {
		c.Serve()
	}
	// An idle worker whose last task's caller waits for each reply
	// itself (syncMark), and sends the next quickly, polls for that next
	// task a little before it sleeps (see wire.Spin), as the caller polls
	// for its reply. Not after other tasks: their replies go to the
	// parent's reader goroutine, which hands them on to other goroutines,
	// and a child polling on one of two processors then takes the one
	// they would run on. lastGap is how long the worker last waited, from
	// such a reply to the next task.
	spinner, _ := c.Stream.(interface {
		spinRead(start time.Time, or func() bool)
	})
	lastGap := time.Duration(math.MaxInt64) // none yet: no polling
	var repliedAt time.Time
	queued := func() bool { return len(ready) > 0 }
	for {
		if worker && spinner != nil && !repliedAt.IsZero() && wire.SpinWorth(lastGap) {
			spinner.spinRead(time.Now(), queued)
		}
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
			if !repliedAt.IsZero() {
				lastGap, repliedAt = time.Since(repliedAt), time.Time{}
			}
			h := req.Msg.Header
			waited := bytes.HasSuffix(h, []byte(syncMark))
			if waited {
				req.Msg.Header = h[:len(h)-len(syncMark)]
			}
			running.Store(true)
			res, err := runRequest(req)
			for _, hook := range childRunDone {
				if herr := hook(); herr != nil && err == nil {
					res, err = wire.Message{}, herr
				}
			}
			if !worker {
				// The parent may close the connection once it has the
				// reply, which ends this process through onBreak: with
				// the status it would have had anyway.
				running.Store(err != nil)
				req.ReplyLast(res, err)
				// As in Python, where a target that raises leaves exit code
				// 1, a task that failed or panicked exits with status 1;
				// the parent has its error already.
				if err != nil {
					os.Exit(1)
				}
				os.Exit(0)
			}
			mu.Lock()
			more := len(queue) > 0
			mu.Unlock()
			if more {
				// The next task's reply will follow: leave this one to
				// the writer, to go out with it.
				req.Reply(res, err)
			} else {
				req.ReplyNow(res, err)
				if waited {
					repliedAt = time.Now()
				}
			}
			running.Store(false)
		}
	}
}

// runRequest runs the registered task a run request names. A plain
// request asks for a reply that does not use the connection's gob types
// (see RunRequest).
func runRequest(req *wire.Request) (wire.Message, error) {
	name, plain := strings.CutSuffix(string(req.Msg.Header), plainMark)
	name, batch := strings.CutSuffix(name, batchMark)
	c := req.Conn
	if plain {
		c = nil
	}
	raw, err := runEncoded(req.Ctx, c, name, batch, req.Msg.Raw)
	return wire.Message{Raw: raw}, err
}
