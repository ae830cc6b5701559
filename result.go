package mp

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"

	"github.com/mpgo/mp/backend"
)

// closedChan is the Done channel of every result resolved before anyone
// asked for its channel.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// AsyncResult is the pending result of a task submitted with [ApplyAsync]:
// the analogue of Python's AsyncResult and concurrent.futures.Future.
//
// An AsyncResult is safe for concurrent use by multiple goroutines. The
// zero value is not usable; results come from ApplyAsync. It must not be
// copied.
type AsyncResult[R any] struct {
	pool *Pool
	val  R
	err  error

	// wg is released when the result resolves, so that a Get that cannot
	// be cancelled waits without allocating a channel.
	wg sync.WaitGroup
	// resolved is set, after val and err, when the task has ended.
	resolved atomic.Bool
	// taken is set once the error has been handed to a caller.
	taken atomic.Bool

	mu       sync.Mutex
	done     chan struct{} // created by the first Done before resolution
	callback func(R, error)

	// state is jobQueued from ApplyAsync until a worker starts the task
	// (jobStarted) or Cancel comes first (jobCancelled); 0 for a result
	// that cannot be cancelled. It lives here rather than in the job, in
	// the padding after resolved and taken, so that Cancel costs a job
	// no space.
	state atomic.Int32
}

func (r *AsyncResult[R]) init(p *Pool) {
	r.pool = p
	r.wg.Add(1)
}

// resolve records the outcome, wakes every waiter and starts the callback.
func (r *AsyncResult[R]) resolve(v R, err error) {
	r.val, r.err = v, err
	if err != nil {
		r.pool.owe(r)
	}
	r.mu.Lock()
	r.resolved.Store(true)
	done, cb := r.done, r.callback
	r.mu.Unlock()
	r.wg.Done()
	if done != nil {
		close(done)
	}
	if cb != nil {
		r.pool.startCallback(func() { cb(r.val, r.claim()) })
	}
}

// claim returns the error and marks it as collected.
func (r *AsyncResult[R]) claim() error {
	if r.err != nil {
		r.taken.Store(true)
	}
	return r.err
}

func (r *AsyncResult[R]) uncollected() (error, bool) {
	if r.taken.Swap(true) {
		return nil, false
	}
	return r.err, true
}

func (r *AsyncResult[R]) collected() bool { return r.taken.Load() }

// Get waits for the task to end and returns its result: the analogue of
// Python's AsyncResult.get(timeout) and Future.result(timeout). It blocks
// until the task has returned, been terminated or been skipped, or ctx is
// done. ctx bounds the wait only: when it is done first, Get returns the
// zero R and context.Cause(ctx), and the task goes on. Get may be called
// any number of times; once it has returned the task's error, [Pool.Join]
// no longer reports that error.
//
// Get allocates nothing when the task has ended or when ctx can never be
// done (context.Background()); otherwise waiting allocates one channel per
// result, which its later waiters share.
func (r *AsyncResult[R]) Get(ctx context.Context) (R, error) {
	if !r.resolved.Load() {
		if ctx.Done() == nil {
			r.wg.Wait()
		} else {
			select {
			case <-r.Done():
			case <-ctx.Done():
				var zero R
				return zero, context.Cause(ctx)
			}
		}
	}
	return r.val, r.claim()
}

// Done returns a channel that is closed when the task has ended, so that
// Get no longer blocks: the analogue of Python's Future.done() as a
// channel. The channel is never sent on.
func (r *AsyncResult[R]) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resolved.Load() {
		return closedChan
	}
	if r.done == nil {
		r.done = make(chan struct{})
	}
	return r.done
}

// Ready reports whether the task has ended: the analogue of Python's
// AsyncResult.ready().
func (r *AsyncResult[R]) Ready() bool {
	return r.resolved.Load()
}

// Then arranges for f to be called with the task's result once it ends:
// the analogue of Python's apply_async(callback=, error_callback=) and
// Future.add_done_callback. f runs on a goroutine of its own, never on a
// worker, so a slow f does not stall the pool (Python's gh-83371); a panic
// in f is recovered and reported by [Pool.Join] as a *[PanicError]. The
// error f receives counts as collected. [Pool.Join] waits for f.
//
// If the task has already ended, Then starts f at once; if moreover the
// pool's workers have all exited, f runs before Then returns. Then returns
// r. It panics if called twice on the same result.
func (r *AsyncResult[R]) Then(f func(R, error)) *AsyncResult[R] {
	r.mu.Lock()
	if r.callback != nil {
		r.mu.Unlock()
		panic("mp: AsyncResult.Then called twice")
	}
	r.callback = f
	resolved := r.resolved.Load()
	r.mu.Unlock()
	if resolved {
		r.pool.startCallback(func() { f(r.val, r.claim()) })
	}
	return r
}

// applyJob is the unit of ApplyAsync. The result lives inside it, so that
// a submission costs one allocation.
type applyJob[A, R any] struct {
	res AsyncResult[R]
	f   Func[A, R]
	arg A
	// ctx is the caller's context, nil if it can never be done.
	ctx context.Context
	// slot is the context slot of the goroutine worker that runs the job.
	slot *taskSlot
}

// The states of an ApplyAsync result (AsyncResult.state).
const (
	jobQueued int32 = iota + 1
	jobStarted
	jobCancelled
)

// start moves the job out of the queue, unless Cancel came first.
func (j *applyJob[A, R]) start() bool { return j.res.state.CompareAndSwap(jobQueued, jobStarted) }

// cancelled reports whether Cancel came before a worker started the job.
func (j *applyJob[A, R]) cancelled() bool { return !j.start() && j.res.state.Load() == jobCancelled }

func (j *applyJob[A, R]) useSlot(s *taskSlot) { j.slot = s }

func (j *applyJob[A, R]) run(p *Pool) bool {
	if !j.start() {
		return true // cancelled
	}
	ctx := p.ctx
	if j.ctx != nil {
		ctx = j.slot.context(p, j.ctx)
		if ctx.Err() != nil {
			// A task whose caller gave up before a worker reached it, or
			// that Terminate caught on its way to the worker, is skipped.
			j.fail(p, context.Cause(ctx))
			return true
		}
	}
	// Otherwise the caller's ctx cannot be done; the pool's is checked by
	// next.
	v, err := callTask(ctx, j.f, j.arg)
	j.finish(v, err)
	return err != nil
}

func (j *applyJob[A, R]) fail(_ *Pool, err error) {
	if j.cancelled() {
		return
	}
	var zero R
	j.finish(zero, err)
}

func (j *applyJob[A, R]) finish(v R, err error) {
	j.ctx, j.slot = nil, nil
	var zero A
	j.arg = zero
	j.res.resolve(v, err)
}

// encodedApply is the unit of ApplyAsync on a remote pool: the job with
// its encoded form, kept apart so that a goroutine pool's job stays small.
type encodedApply[A, R any] struct {
	applyJob[A, R]
	// name and header are the registered name of f, as a string and as
	// the header of a run request; raw is the encoded argument, encoded
	// at submission so that an unencodable one fails in the caller.
	name   string
	header []byte
	raw    []byte
	// val and verr hold a result decoded by decodeReply until
	// resolveReply delivers it.
	val  R
	verr error
}

// encode prepares the job for a remote pool.
func (j *encodedApply[A, R]) encode(arg A) error {
	e, err := registered(j.f)
	if err != nil {
		return err
	}
	j.name, j.header = e.name, e.header
	j.raw, err = codecFor[A]().as(roleArg).encode(arg)
	return err
}

func (j *encodedApply[A, R]) Request() (backend.Request, error) {
	if j.cancelled() {
		return backend.Request{}, context.Canceled
	}
	return backend.Request{Func: j.name, Arg: j.raw}, nil
}

func (j *encodedApply[A, R]) Context() context.Context { return j.ctx }
func (j *encodedApply[A, R]) Fail(err error)           { j.fail(nil, err) }

func (j *encodedApply[A, R]) Complete(r backend.Reply, err error) bool {
	return j.decode(nil, r.Value, replyError(j.ctx, r, err))
}

func (j *encodedApply[A, R]) requestOn(*wire.Conn, []byte) (wire.Message, error) {
	// A worker whose child died sends the job again: only Cancel stops it.
	if j.cancelled() {
		return wire.Message{}, context.Canceled
	}
	return wire.Message{Header: j.header, Raw: j.raw}, nil
}

func (j *encodedApply[A, R]) completeOn(c *wire.Conn, reply wire.Message, err error) bool {
	return j.decode(c, reply.Raw, err)
}

// decodeReply decodes the job's result, to be delivered by resolveReply,
// and reports whether the job failed. Both are quick (see quickCompleter):
// they decode one result and resolve its AsyncResult, whose callback runs
// elsewhere.
func (j *encodedApply[A, R]) decodeReply(c *wire.Conn, reply wire.Message, err error) bool {
	if err == nil {
		j.val, err = codecFor[R]().as(roleResult).decodeOn(c, reply.Raw)
	}
	j.verr = err
	return err != nil
}

func (j *encodedApply[A, R]) resolveReply() {
	v, err := j.val, j.verr
	var zero R
	j.val, j.verr, j.raw = zero, nil, nil
	j.finish(v, err)
}

// decode resolves the job from an encoded result that arrived on c.
func (j *encodedApply[A, R]) decode(c *wire.Conn, raw []byte, err error) bool {
	var v R
	if err == nil {
		v, err = codecFor[R]().as(roleResult).decodeOn(c, raw)
	}
	j.raw = nil
	j.finish(v, err)
	return err != nil
}

// nowRunner is implemented by a back-end whose idle worker a caller that
// waits for a task's result can run the task on itself, sparing the
// hand-offs to and from the worker's goroutine (mp's process back-end:
// see procBackend.runNow). runNow reports false, having done nothing,
// when no worker is idle.
type nowRunner interface {
	runNow(t quickCompleter) bool
}

// ApplyAsync submits f(ctx, arg) to run on a worker and returns its pending
// result: the analogue of Python's Pool.apply_async and Executor.submit.
// The task's context is done when ctx is done or the pool is terminated
// (cause [ErrTerminated]); if ctx is done before a worker takes the task,
// the task is skipped and resolves with context.Cause(ctx).
//
// ApplyAsync blocks only while the pool's queue is full (see [QueueSize]).
// Submission never fails in the caller: after [Pool.Close] the result
// resolves at once with [ErrClosed]. A panic in f resolves the result
// with a *[PanicError]; the worker lives on. A result whose error nobody
// collects with [AsyncResult.Get] or [AsyncResult.Then] is reported by
// [Pool.Join].
//
// ApplyAsync costs one allocation and about 200 ns per task, submission
// and Get included, whether ctx can be done or not: as much as a
// hand-written future on a cap-1 channel (BenchmarkApplyAsync, "pool" and
// "pool-ctx" against "floor"). A ctx that can be done costs a context
// derived from it when a worker starts the task, not while the task is
// queued, and each worker keeps that context for the tasks that follow
// with the same ctx.
func ApplyAsync[A, R any](ctx context.Context, p *Pool, f Func[A, R], arg A) *AsyncResult[R] {
	if p.remote {
		return applyEncoded(ctx, p, f, arg, false)
	}
	j := &applyJob[A, R]{f: f, arg: arg}
	j.res.init(p)
	j.res.state.Store(jobQueued)
	if ctx.Done() != nil {
		j.ctx = ctx
	}
	if err := p.submit(ctx, j); err != nil {
		j.fail(p, err)
	}
	return &j.res
}

// applyEncoded is ApplyAsync on a remote pool: the argument is encoded
// before the job is queued. Unlike a goroutine task, the job needs no
// context merged with the pool's: Terminate stops its worker instead.
// With now, the caller waits for the result: if a worker is idle, the
// caller runs the job on it itself (see nowRunner), rather than through
// the queue.
func applyEncoded[A, R any](ctx context.Context, p *Pool, f Func[A, R], arg A, now bool) *AsyncResult[R] {
	j := &encodedApply[A, R]{applyJob: applyJob[A, R]{f: f}}
	j.res.init(p)
	j.res.state.Store(jobQueued)
	if ctx.Done() != nil {
		j.ctx = ctx
	}
	if err := j.encode(arg); err != nil {
		j.fail(p, err)
		return &j.res
	}
	if now && ctx.Err() == nil && p.gate.Load()&gateClosing == 0 {
		if nr, ok := p.be.(nowRunner); ok && nr.runNow(j) {
			return &j.res
		}
	}
	if err := p.submit(ctx, j); err != nil {
		j.fail(p, err)
	}
	return &j.res
}

// Apply runs f(ctx, arg) on a worker and waits for its result: the analogue
// of Python's Pool.apply. It is shorthand for ApplyAsync(ctx, p, f,
// arg).Get(ctx). It blocks until the task ends or ctx is done; then it
// returns context.Cause(ctx).
func Apply[A, R any](ctx context.Context, p *Pool, f Func[A, R], arg A) (R, error) {
	var r *AsyncResult[R]
	if p.remote {
		r = applyEncoded(ctx, p, f, arg, true)
	} else {
		r = ApplyAsync(ctx, p, f, arg)
	}
	v, err := r.Get(ctx)
	if err != nil {
		// The caller has its error; if it was ctx's, the task's own error
		// follows from that cancellation and is not worth a report.
		r.taken.Store(true)
	}
	return v, err
}
