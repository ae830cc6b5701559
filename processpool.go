package mp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// NewProcessPool returns a pool of workers long-lived child processes: the
// analogue of Python's multiprocessing.Pool(workers) and
// ProcessPoolExecutor. NewProcessPool(0) uses runtime.NumCPU() workers; a
// negative count panics. The pool is the same *[Pool] that [NewPool]
// returns, used with the same functions: [Map], [MapSeq],
// [MapSeqUnordered], [Apply], [ApplyAsync], [Pool.Close],
// [Pool.Terminate], [Pool.Join] and [Pool.Stats].
//
// Every worker is a fresh run of this program (see [Main]), started when
// the pool is created, that runs the tasks it is sent one at a time. A
// task must therefore be registered with [Register]: a function that is
// not fails at once with [ErrNotRegistered] naming it, and an argument that
// cannot be encoded fails at once with the encoder's error, in the caller
// ([Map] returns the error; the result of [ApplyAsync] is already resolved
// with it; [MapSeq] yields it once and ends). [Pool.Go] takes a closure,
// which cannot cross to a process; on a process pool it returns an error
// wrapping ErrNotRegistered.
//
// Tiny tasks are cheap: [Map] sends a chunk of items (see [ChunkSize]) as
// one message that the worker runs as a loop, and several tasks are in
// flight to each worker at once (see [Pipeline]), so that a task does not
// pay a round trip to the child. On a 2-core AMD EPYC with two workers, a
// trivial task costs about 2 µs with ApplyAsync+Get (Python's Pool: 33 µs),
// an item of Map about 0.1 µs with automatic chunking (Python: 0.18 µs)
// and 2 µs with ChunkSize(1) (Python: 19 µs); a lone Apply, which waits
// for the round trip, takes tens of microseconds (BenchmarkProcessPool* in
// processpool_bench_test.go).
//
// A process pool keeps its promises when workers die, where Python's Pool
// hangs (gh-66587) and ProcessPoolExecutor breaks:
//
//   - A worker that exits or is killed is noticed at once, by the end of
//     its connection and by its exit status. The task it was running fails
//     with an *[ExitError] naming the pid and the exit code (−9 for
//     SIGKILL), or runs again on a fresh worker if [Retry] allows; tasks
//     queued behind it had not started and run on the replacement. The
//     worker is replaced and the pool goes on.
//   - Deadlines preempt: a task whose context is done and that has not
//     returned a short grace period later (see [Grace]) is killed with its
//     worker, which is replaced, and fails with context.Cause of its
//     context. Goroutines cannot be preempted; processes can.
//   - [Pool.Terminate] kills the workers: running tasks and queued ones
//     resolve with [ErrTerminated] at once.
//   - [Pool.Close] and [Pool.Join] let the queued tasks run, then close
//     the workers' connections; each worker exits, and Join returns once
//     every worker has been reaped, leaving no process, goroutine or file
//     descriptor behind.
//
// Workers ignore SIGINT: the parent owns cancellation, so a Ctrl-C stops
// the program cleanly instead of spraying every worker's traceback as
// Python's do; when the parent dies, its workers die with it.
//
// Each worker is served in the parent by one goroutine, besides its
// connection's reader and writer and the goroutine that reaps it; they
// live until the pool has been closed and drained, or terminated, and the
// child has been reaped. In [Pool.Stats], Running counts the tasks sent
// to workers and not yet resolved, including those pipelined behind the
// one a worker is running.
//
// On Windows the pool builds, but its workers cannot start: every task
// fails with an error wrapping [errors.ErrUnsupported].
func NewProcessPool(workers int, opts ...Option) *Pool {
	if workers < 0 {
		panic("mp: negative worker count")
	}
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	c := config{proc: procConfig{window: 128, grace: 250 * time.Millisecond, gomaxprocs: -1}}
	for _, o := range opts {
		o.apply(&c)
	}
	b := &procBackend{cfg: c.proc, kids: make([]*child, workers)}
	b.failed = c.proc.initErr
	if b.cfg.gomaxprocs < 0 {
		// Workers that outnumber the cores gain nothing from parallel
		// garbage collection and scheduling of their own, and lose to the
		// contention; one thread each measures faster then.
		b.cfg.gomaxprocs = 0
		if workers >= runtime.NumCPU() {
			b.cfg.gomaxprocs = 1
		}
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && b.cfg.gomaxprocs > 0 {
		b.env = []string{"GOMAXPROCS=" + strconv.Itoa(b.cfg.gomaxprocs)}
	}
	return newPool(workers, b, opts)
}

// procConfig holds the options of a process pool.
type procConfig struct {
	maxTasks   int
	retry      int
	window     int
	grace      time.Duration
	gomaxprocs int // -1: decide from the worker count; 0: inherit
	init       *outgoing
	initErr    error
}

// MaxTasksPerChild makes a process pool replace each worker after it has
// run n tasks (a chunk of [Map] counts as one), as Python's
// maxtasksperchild: a way to bound what a leaky task can accumulate. The
// default is 0, which keeps workers for the pool's life. MaxTasksPerChild
// panics if n < 1. A goroutine pool ignores it.
func MaxTasksPerChild(n int) Option {
	if n < 1 {
		panic("mp: MaxTasksPerChild must be at least 1")
	}
	return optionFunc(func(c *config) { c.proc.maxTasks = n })
}

// Initializer makes every worker of a process pool run f(ctx, arg) once,
// before its first task: the analogue of Python's Pool(initializer,
// initargs). f must be registered with [Register]. If it fails in any
// worker, the pool does not start workers again and again as Python's
// does: every task then fails with an error that wraps f's. If f is not
// registered or arg cannot be encoded, every task fails with that error.
// A goroutine pool ignores it.
func Initializer[A any](f Func[A, struct{}], arg A) Option {
	e, err := registered(f)
	var raw []byte
	if err == nil {
		raw, err = codecFor[A]().as("the initializer's argument").encode(arg)
	}
	if err != nil {
		err = fmt.Errorf("mp: process pool initializer: %w", err)
	}
	return optionFunc(func(c *config) {
		c.proc.initErr = err
		if err == nil {
			c.proc.init = &outgoing{serviceRun, message{header: []byte(e.name), raw: raw}}
		}
	})
}

// Retry makes a process pool run a task again, on a fresh worker, when
// the worker running it dies, up to n times; after that the task fails
// with the *[ExitError]. Only idempotent tasks should be retried, which is
// why the default is 0. A task killed for ignoring its context is not
// retried. Retry panics if n < 0. A goroutine pool ignores it.
func Retry(n int) Option {
	if n < 0 {
		panic("mp: negative Retry count")
	}
	return optionFunc(func(c *config) { c.proc.retry = n })
}

// Grace sets how long a process-pool task may run on after its context is
// done before it is killed together with its worker; the default is
// 250 ms. Grace panics if d < 0. A goroutine pool ignores it.
func Grace(d time.Duration) Option {
	if d < 0 {
		panic("mp: negative Grace")
	}
	return optionFunc(func(c *config) { c.proc.grace = d })
}

// Pipeline sets how many tasks a process pool keeps in flight to each
// worker at most, so that the worker starts the next task without waiting
// for the parent; the default is 128. The pool sends a worker only about
// 2 ms of work ahead, judged by how long its last task took, so that a
// task does not wait long behind others on a busy worker while a free one
// could run it: tasks of 2 ms or more go one at a time.
// Pipeline panics if n < 1. A goroutine pool ignores it.
func Pipeline(n int) Option {
	if n < 1 {
		panic("mp: Pipeline must be at least 1")
	}
	return optionFunc(func(c *config) { c.proc.window = n })
}

// WorkerGOMAXPROCS sets GOMAXPROCS in each worker process; 0 leaves the
// runtime's default. By default a pool with at least as many workers as
// CPUs gives each worker one, which measures faster, and a smaller pool
// leaves the default. A GOMAXPROCS set in the environment wins.
// WorkerGOMAXPROCS panics if n < 0. A goroutine pool ignores it.
func WorkerGOMAXPROCS(n int) Option {
	if n < 0 {
		panic("mp: negative WorkerGOMAXPROCS")
	}
	return optionFunc(func(c *config) { c.proc.gomaxprocs = n })
}

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

// procBackend runs units in child processes, one per worker goroutine.
type procBackend struct {
	cfg procConfig
	env []string

	mu         sync.Mutex
	kids       []*child // the live child of each worker, nil while none
	terminated bool
	failed     error // the initializer's failure: every unit fails with it

	names atomic.Int64
}

// remote returns p's process back-end, or nil for a goroutine pool.
func (p *Pool) remote() *procBackend {
	b, _ := p.be.(*procBackend)
	return b
}

// remoteUnit is a unit that runs in a worker process.
type remoteUnit interface {
	unit
	// request returns the message that runs the unit on the child at the
	// other end of c, and the context whose end withdraws it (nil if
	// nothing but Terminate can).
	// The payload may be built in buf, which the caller reuses once the
	// message has been sent.
	request(c *conn, buf []byte) (message, context.Context, error)
	// complete resolves the unit from the child's reply to request.
	complete(p *Pool, c *conn, reply message, err error) (failed bool)
}

func (b *procBackend) terminate() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.terminated = true
	for _, ch := range b.kids {
		if ch != nil {
			ch.signal(sigKill)
		}
	}
}

func (b *procBackend) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// setKid records the live child of worker i; it reports false, and kills
// ch, if the pool was terminated meanwhile.
func (b *procBackend) setKid(i int, ch *child) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kids[i] = ch
	if ch != nil && b.terminated {
		ch.signal(sigKill)
		return false
	}
	return true
}

// pids returns the pids of the live workers.
func (b *procBackend) pids() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []int
	for _, ch := range b.kids {
		if ch != nil {
			out = append(out, ch.pid)
		}
	}
	return out
}

// inflight is a unit sent to a worker and not yet resolved.
type inflight struct {
	u         remoteUnit
	cl        *call
	ctx       context.Context
	sent      time.Time
	cancelled bool // the child was asked to cancel it
}

// procWorker is the state of one worker goroutine and its child. Only
// that goroutine touches it.
type procWorker struct {
	b  *procBackend
	p  *Pool
	i  int
	ch *child

	pending  []inflight // in the order sent, which is the order run
	buf      []byte     // scratch space for encoding requests
	redo     []remoteUnit
	attempts map[remoteUnit]int
	tasks    int  // units sent to ch
	retiring bool // ch has run its MaxTasksPerChild
	window   int  // how many units may be in flight now
	lastEnd  time.Time
	spawnErr error

	grace     *time.Timer
	preempted bool
}

// pipelineBudget is how much work, by the parent-observed run time of
// the last unit, a worker is sent ahead.
const pipelineBudget = 2 * time.Millisecond

func (b *procBackend) work(p *Pool, i int) {
	w := &procWorker{b: b, p: p, i: i, attempts: map[remoteUnit]int{}, window: 1}
	w.grace = time.NewTimer(time.Hour)
	w.grace.Stop()
	defer w.shutdown()
	open := true // the queue may still hold units
	for {
		if p.terminated.Load() {
			w.terminated(open)
			return
		}
		// Replace a missing child eagerly, so that a task finds a worker
		// ready, unless the queue is closed and nothing is left to run.
		if w.ch == nil && b.failure() == nil && ((w.spawnErr == nil && open) || len(w.redo) > 0) {
			w.spawn()
		}
		if w.ch == nil && len(w.redo) > 0 {
			err := w.unavailable()
			for _, u := range w.redo {
				w.count(u, err)
			}
			w.redo = nil
		}
		for len(w.redo) > 0 && w.ch != nil && !w.retiring && len(w.pending) < w.window {
			u := w.redo[0]
			w.redo = w.redo[1:]
			if !w.send(u) {
				break
			}
		}
		var wake <-chan struct{}
		if open && len(w.redo) == 0 && (w.ch == nil || (!w.retiring && len(w.pending) < w.window)) {
			// Take what is queued, as much as the window allows, then
			// sleep as an idle goroutine worker does (see Pool.await),
			// unless a reply or a death comes first.
			u, r := p.take()
			if r == empty {
				p.sleep()
				if u, r = p.take(); r == empty {
					wake = p.wake
				} else {
					p.unsleep()
				}
			}
			switch r {
			case exhausted:
				open = false
				continue
			case took:
				w.take(u)
				for w.ch != nil && !w.retiring && len(w.pending) < w.window && !p.terminated.Load() {
					if u, r = p.take(); r != took {
						break
					}
					w.take(u)
				}
				continue
			}
		}
		if len(w.pending) == 0 {
			if w.retiring {
				if wake != nil {
					p.unsleep()
				}
				w.retire()
				continue
			}
			if !open && len(w.redo) == 0 {
				return
			}
		}
		var headDone, ctxDone, chDone, broken <-chan struct{}
		if len(w.pending) > 0 {
			h := &w.pending[0]
			headDone = h.cl.done
			if h.ctx != nil && !h.cancelled {
				ctxDone = h.ctx.Done()
			}
		}
		if w.ch != nil {
			chDone, broken = w.ch.done, w.ch.conn.broken
		}
		select {
		case <-wake:
			// The waker counted this worker as waking; the next round
			// takes the unit.
			p.stopWaking(true)
			continue
		case <-headDone:
			w.complete()
			// Resolve the replies that arrived with it.
			for w.ch != nil && len(w.pending) > 0 && isClosed(w.pending[0].cl.done) {
				w.complete()
			}
		case <-ctxDone:
			h := &w.pending[0]
			h.cancelled = true
			_ = w.ch.conn.w.WriteFrame(&wire.Frame{Kind: kindCancel, ID: h.cl.id}, false)
			w.grace.Reset(w.b.cfg.grace)
		case <-w.grace.C:
			w.preempted = true
			w.ch.signal(sigKill)
			w.died()
		case <-chDone:
			w.died()
		case <-broken:
			w.died()
		}
		if wake != nil {
			p.unsleep()
		}
	}
}

// isClosed reports whether c is closed, without blocking.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// count resolves u with err without sending it, and counts it.
func (w *procWorker) count(u unit, err error) {
	c := &w.p.counters[w.i%maxShards]
	inc(&c.started, w.p.shared)
	inc(&c.failed, w.p.shared)
	u.fail(w.p, err)
}

// unavailable says why the worker has no child.
func (w *procWorker) unavailable() error {
	if err := w.b.failure(); err != nil {
		return err
	}
	return w.spawnErr
}

// take handles a unit from the queue.
func (w *procWorker) take(u unit) {
	if w.p.terminated.Load() {
		w.count(u, ErrTerminated)
		return
	}
	r, ok := u.(remoteUnit)
	if !ok {
		w.count(u, errGoOnProcessPool)
		return
	}
	if w.ch == nil && w.b.failure() == nil {
		// The last start failed: try again, so that a passing problem
		// does not fail the pool for good.
		w.spawn()
	}
	if w.ch == nil {
		w.count(u, w.unavailable())
		return
	}
	w.send(r)
}

// send starts u on the child. It reports false, keeping u for the next
// child, if the child is gone; the death is handled by the caller's next
// select.
func (w *procWorker) send(u remoteUnit) bool {
	c := w.ch.conn
	if isClosed(c.broken) || isClosed(w.ch.done) {
		w.redo = append([]remoteUnit{u}, w.redo...)
		return false
	}
	msg, ctx, err := u.request(c, w.buf[:0])
	if err == nil && ctx != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		w.count(u, err)
		return true
	}
	cl, err := c.start(serviceRun, msg)
	if errors.Is(err, errLost) {
		// The child is gone; the unit has not started.
		w.redo = append([]remoteUnit{u}, w.redo...)
		return false
	}
	if err != nil {
		w.count(u, err)
		return true
	}
	if cap(msg.raw) > cap(w.buf) && cap(msg.raw) <= 64<<10 {
		w.buf = msg.raw[:0]
	}
	inc(&w.p.counters[w.i%maxShards].started, w.p.shared)
	w.pending = append(w.pending, inflight{u: u, cl: cl, ctx: ctx, sent: time.Now()})
	w.tasks++
	if m := w.b.cfg.maxTasks; m > 0 && w.tasks >= m {
		w.retiring = true
	}
	return true
}

// complete resolves the unit at the head, whose call has ended.
func (w *procWorker) complete() {
	h := w.pending[0]
	if errors.Is(h.cl.err, errLost) {
		w.died()
		return
	}
	w.pending[0] = inflight{}
	w.pending = w.pending[1:]
	if h.cancelled {
		w.grace.Stop()
	}
	now := time.Now()
	start := h.sent
	if w.lastEnd.After(start) {
		start = w.lastEnd
	}
	w.lastEnd = now
	// Keep about pipelineBudget of work queued in the child: enough to
	// hide the round trip for tiny tasks, little enough that a task does
	// not wait long behind others while another worker is free.
	w.window = w.b.cfg.window
	if d := now.Sub(start); d > 0 && int64(d) > int64(pipelineBudget)/int64(w.window) {
		w.window = max(1, int(pipelineBudget/d))
	}
	err := h.cl.err
	if err != nil && h.ctx != nil && h.ctx.Err() != nil {
		// The child stopped the task because its context ended here.
		err = context.Cause(h.ctx)
	}
	w.resolve(h.u, h.cl.reply, err)
}

func (w *procWorker) resolve(u remoteUnit, reply message, err error) {
	delete(w.attempts, u)
	c := &w.p.counters[w.i%maxShards]
	if u.complete(w.p, w.ch.conn, reply, err) {
		inc(&c.failed, w.p.shared)
	} else {
		inc(&c.completed, w.p.shared)
	}
}

// died handles the end of the child: it resolves the units whose replies
// arrived, fails (or retries) the one that was running, and keeps the
// ones behind it, which never started, for the next child.
func (w *procWorker) died() {
	ch := w.ch
	select {
	case <-ch.conn.broken:
	case <-time.After(time.Second):
		// The child is gone but something holds its socket open; what
		// it sent before dying has been read by now.
	}
	ch.signal(sigKill)
	<-ch.done
	ch.conn.close()
	w.grace.Stop()
	exit := ch.endError()
	var redo []remoteUnit
	running := true
	for _, h := range w.pending {
		switch {
		case !errors.Is(h.cl.err, errLost):
			w.resolve(h.u, h.cl.reply, h.cl.err)
		case !running:
			redo = append(redo, h.u)
			w.uncount()
		default:
			running = false
			switch {
			case w.p.terminated.Load():
				w.resolve(h.u, message{}, ErrTerminated)
			case w.preempted && h.ctx != nil:
				w.resolve(h.u, message{}, context.Cause(h.ctx))
			case w.attempts[h.u] < w.b.cfg.retry:
				w.attempts[h.u]++
				redo = append(redo, h.u)
				w.uncount()
			default:
				w.resolve(h.u, message{}, exit)
			}
		}
	}
	w.redo = append(redo, w.redo...)
	w.pending, w.preempted = nil, false
	w.drop()
}

// uncount takes back the start of a unit that will be sent again.
func (w *procWorker) uncount() {
	c := &w.p.counters[w.i%maxShards]
	if w.p.shared {
		c.started.Add(-1)
	} else {
		c.started.Store(c.started.Load() - 1)
	}
}

// drop forgets the child, which has been reaped.
func (w *procWorker) drop() {
	w.ch = nil
	w.tasks, w.retiring, w.window = 0, false, 1
	w.b.setKid(w.i, nil)
}

// retire closes the connection of a child that has run its
// MaxTasksPerChild and has nothing in flight; the child exits on EOF.
func (w *procWorker) retire() {
	w.closeChild()
	w.drop()
}

// closeChild closes the connection to the child and waits until it has
// exited and been reaped, killing it if it does not exit within a second.
func (w *procWorker) closeChild() {
	ch := w.ch
	ch.conn.close()
	select {
	case <-ch.done:
	case <-time.After(time.Second):
		ch.signal(sigKill)
		<-ch.done
	}
}

// spawn starts the worker's child and runs the initializer in it.
func (w *procWorker) spawn() {
	b := w.b
	o := spawnOptions{
		name:   fmt.Sprintf("PoolWorker-%d", b.names.Add(1)),
		env:    b.env,
		worker: true,
		first:  b.cfg.init,
	}
	ch, err := spawn(o)
	w.spawnErr = err
	if err != nil {
		return
	}
	if !b.setKid(w.i, ch) {
		<-ch.done
		ch.conn.close()
		b.setKid(w.i, nil)
		return
	}
	w.ch = ch
	if ch.first == nil {
		return
	}
	if _, err := ch.await(ch.first); err != nil {
		if errors.Is(err, errLost) {
			err = ch.exitError()
		}
		b.mu.Lock()
		if b.failed == nil {
			b.failed = fmt.Errorf("mp: process pool initializer failed in worker %d: %w", ch.pid, err)
		}
		b.mu.Unlock()
		w.closeChild()
		w.drop()
	}
}

// terminated resolves everything the worker holds or can still take with
// ErrTerminated, after Terminate has killed its child.
func (w *procWorker) terminated(open bool) {
	if w.ch != nil {
		w.ch.signal(sigKill)
		w.died()
	}
	for _, u := range w.redo {
		w.count(u, ErrTerminated)
	}
	w.redo = nil
	if open {
		for u, ok := w.p.get(); ok; u, ok = w.p.get() {
			w.count(u, ErrTerminated)
		}
	}
}

// shutdown ends the child, if any, when the worker goroutine returns.
func (w *procWorker) shutdown() {
	w.grace.Stop()
	if w.ch != nil {
		w.closeChild()
		w.drop()
	}
}

// remoteApply is the unit of ApplyAsync on a process pool.
type remoteApply[A, R any] struct {
	res AsyncResult[R]
	msg message
	ctx context.Context
}

// applyRemote is ApplyAsync on a process pool.
func applyRemote[A, R any](ctx context.Context, p *Pool, f Func[A, R], arg A) *AsyncResult[R] {
	j := &remoteApply[A, R]{}
	j.res.init(p)
	e, err := registered(f)
	var raw []byte
	if err == nil {
		raw, err = codecFor[A]().as(roleArg).encode(arg)
	}
	if err != nil {
		j.fail(p, err)
		return &j.res
	}
	j.msg = message{header: []byte(e.name), raw: raw}
	if ctx.Done() != nil {
		// Unlike a goroutine task, a remote one needs no context merged
		// with the pool's: Terminate kills its worker instead.
		j.ctx = ctx
	}
	if err := p.submit(ctx, j); err != nil {
		j.fail(p, err)
	}
	return &j.res
}

func (j *remoteApply[A, R]) run(p *Pool) bool {
	j.fail(p, errGoOnProcessPool)
	return true
}

func (j *remoteApply[A, R]) request(*conn, []byte) (message, context.Context, error) {
	return j.msg, j.ctx, nil
}

func (j *remoteApply[A, R]) complete(_ *Pool, c *conn, reply message, err error) bool {
	var v R
	if err == nil {
		v, err = codecFor[R]().as(roleResult).decodeOn(c, reply.raw)
	}
	j.finish(v, err)
	return err != nil
}

func (j *remoteApply[A, R]) fail(_ *Pool, err error) {
	var zero R
	j.finish(zero, err)
}

func (j *remoteApply[A, R]) finish(v R, err error) {
	j.ctx, j.msg = nil, message{}
	j.res.resolve(v, err)
}

// batchMark ends the header of a run request whose payload is a batch of
// arguments, for the entry's runBatch.
const batchMark = "\x00batch"

// remoteChunk is the unit of a Map chunk on a process pool.
type remoteChunk[A, R any] struct {
	m      *mapState[A, R]
	lo, hi int
	r      *remoteMap[A, R]
}

// remoteMap is what the chunks of one Map call on a process pool share.
type remoteMap[A, R any] struct {
	header []byte
	args   batchCodec[A]
	res    batchCodec[R]
}

// mapRemote is Map on a process pool, with n chunks of size items.
func mapRemote[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, size, n int) ([]R, error) {
	e, err := registered(f)
	if err != nil {
		return nil, err
	}
	r := &remoteMap[A, R]{header: []byte(e.name + batchMark), args: newBatchCodec[A]().as(roleArgs), res: newBatchCodec[R]().as(roleResults)}
	chunks := make([]remoteChunk[A, R], n)
	return runMap(ctx, p, f, items, size, n, func(m *mapState[A, R], i, lo, hi int) unit {
		chunks[i] = remoteChunk[A, R]{m: m, lo: lo, hi: hi, r: r}
		return &chunks[i]
	})
}

func (c *remoteChunk[A, R]) run(p *Pool) bool {
	c.fail(p, errGoOnProcessPool)
	return true
}

func (c *remoteChunk[A, R]) request(cn *conn, buf []byte) (message, context.Context, error) {
	if c.m.stopped.Load() {
		return message{}, nil, c.m.err
	}
	raw, err := c.r.args.encode(cn, buf, c.m.items[c.lo:c.hi])
	return message{header: c.r.header, raw: raw}, c.m.ctx, err
}

func (c *remoteChunk[A, R]) complete(_ *Pool, cn *conn, reply message, err error) bool {
	defer c.m.end()
	if err == nil {
		if err = c.r.res.decodeInto(cn, reply.raw, c.m.results[c.lo:c.hi]); err == nil {
			return false
		}
	}
	c.m.stop(err)
	return true
}

func (c *remoteChunk[A, R]) fail(_ *Pool, err error) {
	c.m.stop(err)
	c.m.end()
}

// request and complete make an item of MapSeq a remote unit.
func (j *seqSlot[A, R]) request(c *conn, _ []byte) (message, context.Context, error) {
	raw, err := codecFor[A]().as(roleArg).encodeOn(c, j.arg)
	return message{header: j.s.header, raw: raw}, j.s.ctx, err
}

func (j *seqSlot[A, R]) complete(_ *Pool, c *conn, reply message, err error) bool {
	if err == nil {
		j.val, err = codecFor[R]().as(roleResult).decodeOn(c, reply.raw)
	}
	j.err = err
	j.s.ended <- j.i
	return err != nil
}

// batchCodec encodes a batch of values as one payload: numbers and
// booleans packed one after another, strings, byte slices and zero-size
// values with their lengths, other types as one gob of the slice, so that
// a type is described once per batch at most.
type batchCodec[T any] struct {
	item  codec[T]
	slice codec[[]T]
}

func newBatchCodec[T any]() batchCodec[T] {
	return batchCodec[T]{item: codecFor[T](), slice: codecFor[[]T]()}
}

// as returns bc for values that play role, as codec.as does.
func (bc batchCodec[T]) as(role string) batchCodec[T] {
	return batchCodec[T]{item: bc.item.as(role), slice: bc.slice.as(role)}
}

// encode appends the batch vs to buf, unless it goes through gob.
func (bc batchCodec[T]) encode(c *conn, buf []byte, vs []T) ([]byte, error) {
	k := bc.item.kind
	if k == codecGob {
		return bc.slice.encodeOn(c, vs)
	}
	b := binary.AppendUvarint(buf, uint64(len(vs)))
	rv := reflect.ValueOf(vs)
	for i := range vs {
		switch k {
		case codecInt:
			b = binary.AppendVarint(b, rv.Index(i).Int())
		case codecUint:
			b = binary.AppendUvarint(b, rv.Index(i).Uint())
		case codecFloat:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(rv.Index(i).Float()))
		case codecBool:
			if rv.Index(i).Bool() {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		default:
			e, err := bc.item.encodeOn(c, vs[i])
			if err != nil {
				return nil, err
			}
			b = binary.AppendUvarint(b, uint64(len(e)))
			b = append(b, e...)
		}
	}
	return b, nil
}

func (bc batchCodec[T]) malformed() error {
	return fmt.Errorf("mp: malformed batch of %v", bc.item.typ)
}

func (bc batchCodec[T]) decode(c *conn, b []byte) ([]T, error) {
	if bc.item.kind == codecGob {
		return bc.slice.decodeOn(c, b)
	}
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)) {
		return nil, bc.malformed()
	}
	out := make([]T, n)
	return out, bc.decodeInto(c, b, out)
}

// decodeInto decodes a batch of exactly len(out) values into out.
func (bc batchCodec[T]) decodeInto(c *conn, b []byte, out []T) error {
	k := bc.item.kind
	if k == codecGob {
		vs, err := bc.slice.decodeOn(c, b)
		if err == nil && len(vs) != len(out) {
			err = fmt.Errorf("mp: worker returned %d results for %d items", len(vs), len(out))
		}
		copy(out, vs)
		return err
	}
	n, m := binary.Uvarint(b)
	if m <= 0 || n != uint64(len(out)) {
		return fmt.Errorf("mp: worker returned a batch that does not hold %d results", len(out))
	}
	b = b[m:]
	rv := reflect.ValueOf(out)
	for i := range out {
		switch k {
		case codecInt:
			x, m := binary.Varint(b)
			if m <= 0 || rv.Index(i).OverflowInt(x) {
				return bc.malformed()
			}
			rv.Index(i).SetInt(x)
			b = b[m:]
		case codecUint:
			x, m := binary.Uvarint(b)
			if m <= 0 || rv.Index(i).OverflowUint(x) {
				return bc.malformed()
			}
			rv.Index(i).SetUint(x)
			b = b[m:]
		case codecFloat:
			if len(b) < 8 {
				return bc.malformed()
			}
			rv.Index(i).SetFloat(math.Float64frombits(binary.BigEndian.Uint64(b)))
			b = b[8:]
		case codecBool:
			if len(b) < 1 {
				return bc.malformed()
			}
			rv.Index(i).SetBool(b[0] == 1)
			b = b[1:]
		default:
			l, m := binary.Uvarint(b)
			if m <= 0 || l > uint64(len(b)-m) {
				return bc.malformed()
			}
			v, err := bc.item.decodeOn(c, b[m:m+int(l)])
			if err != nil {
				return err
			}
			out[i] = v
			b = b[m+int(l):]
		}
	}
	return nil
}

// batchRunner returns the run of a registered task's batch form: decode
// the arguments, run the task on each in turn until one fails or ctx is
// done, and encode the results.
func batchRunner[A, R any](f Func[A, R], name string) func(ctx context.Context, c *conn, arg []byte) ([]byte, error) {
	ac, rc := newBatchCodec[A]().as(roleArgs+" of "+name), newBatchCodec[R]().as(roleResults+" of "+name)
	return func(ctx context.Context, c *conn, arg []byte) ([]byte, error) {
		items, err := ac.decode(c, arg)
		if err != nil {
			return nil, err
		}
		out := make([]R, len(items))
		for i := range items {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if out[i], err = callTask(ctx, f, items[i]); err != nil {
				return nil, err
			}
		}
		b, err := rc.encode(c, nil, out)
		if err != nil {
			return nil, unencodable("results of "+name, err)
		}
		return b, nil
	}
}
