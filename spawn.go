package mp

import (
	"context"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// helloTimeout bounds the wait for a new child's handshake. A child that
// does not answer in time is not running Main.
var helloTimeout = 10 * time.Second

// serviceRun is the child-side service that runs a registered task.
const serviceRun = "mp.run"

// The machinery below is shared with the process pool and the
// cross-process queues:
//
//   - spawn starts a child (a Process child, or with worker set a pool
//     worker that serves runs until its connection closes) and returns a
//     *child: its pid, its connection (a wire.Conn), done (closed once
//     reaped) and exitError.
//   - child.conn.Start(serviceRun, wire.Message{Header: name, Raw: arg})
//     runs a registered task; a worker runs such requests one at a time in
//     arrival order, so they may be pipelined. Call.Wait collects the
//     reply; Call.Cancel and Call.Abandon cancel the task's ctx in the
//     child.
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
	// spare makes the child a spare: it waits, past its handshake, to be
	// told its name and whether it is a worker (see spares_unix.go).
	spare bool
	// inherit, if set, is what the child inherits from this program
	// instead of what the program has now: a spare is started on a
	// goroutine of mp's, which must not read os.Stdout while the
	// program's own goroutines may set it.
	inherit *setting
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
	msg     wire.Message
}

// child is a started child process, seen from its parent.
type child struct {
	pid    int
	name   string
	worker bool // spawnOptions.worker
	conn   *wire.Conn
	cmd    *exec.Cmd

	// first is the call of spawnOptions.first.
	first *wire.Call
	tail  *tailWriter // nil unless stderr is captured

	done     chan struct{} // closed once the child has been reaped
	exitCode int           // valid once done is closed
	onReaped func()        // spawnOptions.reaped

	// holdsSpawner reports whether the child keeps the spawner thread
	// alive until it is reaped: every child but a spare that has cleared
	// its parent-death signal (see spares_unix.go).
	holdsSpawner bool

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
var childHooks []func(c *wire.Conn, worker bool)

// childRunDone run in a child after each task returns and before its
// reply is sent, so that state the task left behind (a queue proxy's
// unsent acknowledgements) reaches the parent before the reply does. An
// error one returns fails a task that succeeded: a queue's Puts that the
// parent refused after they had returned are reported no later than that.
var childRunDone []func() error

// parentConn is a child's connection to its parent; nil in a process mp
// did not start.
var parentConn *wire.Conn

// await waits for the reply to cl. If the child exits without replying it
// waits briefly for a reply still in the socket, then gives up with an
// error wrapping wire.ErrConnLost.
func (ch *child) await(cl *wire.Call) (wire.Message, error) {
	select {
	case <-cl.Done:
	case <-ch.done:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		select {
		case <-cl.Done:
		case <-ctx.Done():
			ch.conn.Close()
			<-cl.Done
		}
	}
	return cl.Reply, cl.Err
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

// dropForProtocol kills a child that broke the protocol, keeping err, the
// first such reason, as what its owner reports.
func (ch *child) dropForProtocol(err error) {
	ch.mu.Lock()
	if ch.protoErr == nil {
		ch.protoErr = err
	}
	ch.mu.Unlock()
	_ = ch.signal(sigKill)
}
