package mp

import (
	"context"
	"fmt"
	"os"

	"github.com/mpgo/mp/internal/wire"

	"github.com/mpgo/mp/backend"
)

// The pool's side of the seam of package backend.
//
// A Pool holds one backend.Backend and never asks which one it is. It asks
// one question of it, Remote, at construction: whether tasks leave this
// process, so that submissions must name registered functions and carry
// encodable arguments, checked in the caller. Every unit on the queue
// carries both of its forms: run, which executes it in this process for
// the goroutine back-end, and the backend.Task methods, which give its
// encoded request and resolve it from a reply, for every other back-end.
// mp's own process back-end uses a richer form of the latter, streamTask,
// whose values share gob type descriptions over one connection.

// NewPoolOn returns a pool of workers whose tasks run on b: how a back-end
// module (such as mp's cluster module) makes an ordinary *Pool, on which
// [Map], [MapSeq], [MapSeqUnordered], [Apply], [ApplyAsync], [Pool.Close],
// [Pool.Terminate], [Pool.Join] and [Pool.Stats] work unchanged. Programs
// use [NewPool] or [NewProcessPool] instead.
//
// NewPoolOn panics if workers < 1 or b is nil, and if b is not remote
// (see [backend.Backend]): a task runs in this process only through mp's
// own goroutine back-end.
func NewPoolOn(workers int, b backend.Backend, opts ...Option) *Pool {
	if workers < 1 {
		panic("mp: NewPoolOn needs at least one worker")
	}
	if b == nil || !b.Remote() {
		panic("mp: NewPoolOn needs a remote back-end; use NewPool for goroutines")
	}
	return newPool(workers, b, configure(workers, opts))
}

// workerQueue is the pool's queue as one worker of a remote back-end sees
// it: the backend.Queue that Backend.Work gets.
type workerQueue struct {
	p *Pool
	c *counters
}

// task turns a unit into the task a remote back-end sees. Pool.Go refuses
// closures on a remote pool, so every unit is a task; the check keeps a
// unit that is not from resolving nowhere.
func (q *workerQueue) task(u unit) (backend.Task, bool) {
	t, ok := u.(backend.Task)
	if !ok {
		q.Started()
		q.Ended(true)
		u.fail(q.p, errGoOnProcessPool)
	}
	return t, ok
}

func (q *workerQueue) Next() (backend.Task, bool) {
	for {
		u, ok := q.p.get()
		if !ok {
			return nil, false
		}
		if t, ok := q.task(u); ok {
			return t, true
		}
	}
}

func (q *workerQueue) TryNext() (backend.Task, backend.Status) {
	for {
		u, r := q.p.take()
		switch r {
		case empty:
			return nil, backend.Empty
		case exhausted:
			return nil, backend.Drained
		}
		if t, ok := q.task(u); ok {
			return t, backend.Took
		}
	}
}

func (q *workerQueue) Sleep() <-chan struct{} {
	q.p.sleep()
	return q.p.wake
}

func (q *workerQueue) Woke()            { q.p.stopWaking(true) }
func (q *workerQueue) Unsleep()         { q.p.unsleep() }
func (q *workerQueue) Terminated() bool { return q.p.terminated.Load() }
func (q *workerQueue) Started()         { inc(&q.c.started, q.p.shared) }

func (q *workerQueue) Unstarted() {
	if q.p.shared {
		q.c.started.Add(-1)
	} else {
		q.c.started.Store(q.c.started.Load() - 1)
	}
}

func (q *workerQueue) Ended(failed bool) {
	if failed {
		inc(&q.c.failed, q.p.shared)
	} else {
		inc(&q.c.completed, q.p.shared)
	}
}

// quickCompleter is implemented by a streamTask whose completion is quick
// and never blocks, which may therefore run on the connection's reader
// goroutine as the reply arrives (see earlyResult). Only the decoding of
// the result runs user code there, under the codec's recover. Completion
// comes in two steps, so that the pool counts the task as ended before its
// caller can see the result: decodeReply, which reports whether the task
// failed, then resolveReply.
type quickCompleter interface {
	streamTask
	decodeReply(c *wire.Conn, reply wire.Message, err error) (failed bool)
	resolveReply()
}

// streamTask is the form of a task that mp's process back-end sends: the
// values of its request and reply may use the gob types already described
// on the connection they cross (see gobstream.go).
type streamTask interface {
	backend.Task
	// requestOn returns the message that runs the task on the child at
	// the other end of c. The payload may be built in buf, which the
	// caller reuses once the message has been sent.
	requestOn(c *wire.Conn, buf []byte) (wire.Message, error)
	// completeOn resolves the task from the child's reply to requestOn,
	// or with err, and reports whether it failed.
	completeOn(c *wire.Conn, reply wire.Message, err error) (failed bool)
}

// replyError returns the error of a reply to a task whose context is ctx
// (nil if it cannot end), err winning over the task's own. A task that
// failed after its context ended failed of that: it gets the context's
// cause itself, not a copy of it that crossed as bytes.
func replyError(ctx context.Context, r backend.Reply, err error) error {
	if err == nil && r.Err != nil {
		err = decodeError(r.Err)
	}
	if err != nil && ctx != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return err
}

// RunRequest runs req, a task in encoded form, on p and returns its
// encoded reply: the serving side of a back-end (see package backend). A
// goroutine pool decodes the argument and runs the registered function in
// this process; a process pool passes the request, still encoded, to a
// worker process. RunRequest blocks until the task has ended. ctx is the
// task's context: when it is done the task sees it cancelled, and
// RunRequest still waits for the task to return, so that no task outlives
// the call (a process pool kills one that ignores it, after its
// [Grace]).
//
// Every failure is in the reply, never lost: a request that names a
// function this binary did not register, an argument that does not
// decode, the task's own error or panic, a worker that died, a closed
// pool. Programs use [Apply] instead.
func RunRequest(ctx context.Context, p *Pool, req backend.Request) backend.Reply {
	j := &requestJob{req: req, done: make(chan struct{})}
	j.pool = p
	if ctx.Done() != nil {
		j.ctx = ctx
	}
	if err := p.submit(ctx, j); err != nil {
		j.fail(p, err)
	}
	<-j.done
	return j.reply
}

// requestJob is the unit of RunRequest.
type requestJob struct {
	pool  *Pool
	req   backend.Request
	ctx   context.Context
	slot  *taskSlot
	reply backend.Reply
	done  chan struct{}
}

func (j *requestJob) useSlot(s *taskSlot) { j.slot = s }

func (j *requestJob) run(p *Pool) bool {
	ctx := p.ctx
	if j.ctx != nil {
		ctx = j.slot.context(p, j.ctx)
	}
	v, err := runEncoded(ctx, nil, j.req.Func, j.req.Batch, j.req.Arg)
	j.finish(backend.Reply{Value: v}, err)
	return err != nil
}

// runEncoded runs the registered task name on an encoded argument, or
// batch of them, and returns its encoded result, for the peer at the
// other end of c (nil: self-contained values).
func runEncoded(ctx context.Context, c *wire.Conn, name string, batch bool, arg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	e, ok := lookup(name)
	if !ok {
		where := "process"
		if current.isChild {
			where = "child process"
		}
		return nil, fmt.Errorf("%w: %s is not registered in %s %d; register tasks unconditionally at package level", ErrNotRegistered, name, where, os.Getpid())
	}
	if batch {
		return e.runBatch(ctx, c, arg)
	}
	return e.run(ctx, c, arg)
}

func (j *requestJob) finish(r backend.Reply, err error) {
	if err != nil {
		r = backend.Reply{Err: encodeError(err)}
	}
	j.reply = r
	j.ctx, j.slot = nil, nil
	close(j.done)
}

func (j *requestJob) fail(_ *Pool, err error) { j.finish(backend.Reply{}, err) }

func (j *requestJob) Request() (backend.Request, error) { return j.req, nil }
func (j *requestJob) Context() context.Context          { return j.ctx }
func (j *requestJob) Fail(err error)                    { j.fail(j.pool, err) }

func (j *requestJob) Complete(r backend.Reply, err error) bool {
	if err != nil {
		r = backend.Reply{Err: encodeError(err)}
	}
	j.finish(r, nil)
	return r.Err != nil
}

// requestOn asks the child for a self-contained reply, which the caller
// of RunRequest can pass on without this connection.
func (j *requestJob) requestOn(*wire.Conn, []byte) (wire.Message, error) {
	return wire.Message{Header: requestHeader(j.req.Func, j.req.Batch, true), Raw: j.req.Arg}, nil
}

func (j *requestJob) completeOn(_ *wire.Conn, reply wire.Message, err error) bool {
	return j.Complete(backend.Reply{Value: reply.Raw}, err)
}

// The marks that end the header of a run request, after the registered
// name: batchMark for a batch of arguments (a chunk of Map), plainMark for
// a reply that must not use the connection's gob types, and last syncMark
// for a task whose caller waits for the reply itself (see serveChild).
const (
	batchMark = "\x00batch"
	plainMark = "\x00plain"
	syncMark  = "\x00sync"
)

// requestHeader returns the header of a run request for the task name.
func requestHeader(name string, batch, plain bool) []byte {
	h := []byte(name)
	if batch {
		h = append(h, batchMark...)
	}
	if plain {
		h = append(h, plainMark...)
	}
	return h
}
