package mp

import (
	"context"
	"errors"
	"iter"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The seam between scheduling and execution.
//
// Everything a caller can observe about a Pool — the queue of units,
// Close/Terminate/Join, Stats, uncollected errors and the resolution of
// every result — lives in backend-independent code in this file. A unit is
// one entry of the queue that knows how to run itself and how to fail
// without running: a Go function, an ApplyAsync, a worker's share of a Map
// (a chunk of it on a process pool), an item of a MapSeq.
//
// How a unit executes is the business of a backend. The goroutine backend
// runs each worker as a goroutine that calls unit.run in-process. A process
// backend, added in its own file with its own constructor (NewProcessPool
// returning the same *Pool), keeps one goroutine per child process that
// takes units from the same queue with next, sends their encoded form (a
// registered function's name and the gob-encoded argument, or one encoded
// batch for a Map chunk) to the child, keeps several in flight
// (pipelining), and resolves each from the encoded reply. Its units
// implement unit plus the encoding and decoding it needs. When a child
// dies, that goroutine fails the units it had in flight from outside with
// unit.fail(p, &ExitError{...}), and replaces the child; Terminate calls
// backend.terminate, which kills the children instead of waiting. The
// generic functions then gain one branch that builds a remote unit instead
// of a local one; nothing else in the public API changes.

// backend executes the units of a Pool.
type backend interface {
	// work is the body of worker i, run by the Pool on its own goroutine.
	// It takes units with p.next(i) until that reports false, executes
	// them with p.exec(i, u), and returns. A remote worker instead takes
	// them with p.take, sleeping on p.wake as p.await does, and counts
	// them in shard i itself, started ones included: Stats derives the
	// started units of a goroutine pool from the queue.
	work(p *Pool, i int)
	// terminate is called once by Terminate, after the pool's context has
	// been cancelled with cause ErrTerminated and before the queue is
	// drained. A backend whose running units cannot see that context (a
	// child process) stops them here, failing them with ErrTerminated.
	terminate()
}

// unit is one entry of a Pool's queue, which carries its own result.
type unit interface {
	// run executes the unit on the calling goroutine, under p's context
	// (cancelled with cause ErrTerminated by Terminate) or a narrower one
	// of its own. run reports whether the unit failed.
	run(p *Pool) (failed bool)
	// fail resolves the unit with err without running it.
	fail(p *Pool, err error)
}

// goFunc is the unit of Pool.Go. A func is pointer-shaped, so making it a
// unit allocates nothing.
type goFunc func(ctx context.Context) error

func (f goFunc) run(p *Pool) bool {
	if err := callGo(p.ctx, f); err != nil {
		p.report(err)
		return true
	}
	return false
}

func (goFunc) fail(p *Pool, err error) { p.report(err) }

// goroutines is the backend of NewPool: every worker is a goroutine that
// runs units in-process.
type goroutines struct {
	// slots holds the task context of each worker, indexed as workers.
	slots []taskSlot
}

// slotUser is a unit that runs under a context of its worker's taskSlot.
type slotUser interface {
	useSlot(s *taskSlot)
}

func (g *goroutines) work(p *Pool, i int) {
	s := &g.slots[i]
	defer s.release()
	for {
		u, ok := p.next(i)
		if !ok {
			return
		}
		if su, ok := u.(slotUser); ok {
			su.useSlot(s)
		}
		p.exec(i, u)
	}
}

// terminate cancels the task contexts of the workers with cause
// ErrTerminated. Other goroutine tasks run under the pool's context, which
// Terminate has cancelled; none can be preempted.
func (g *goroutines) terminate() {
	for i := range g.slots {
		g.slots[i].terminate()
	}
}

// taskSlot is the context under which one goroutine worker runs the tasks
// submitted with a context that can be done. That context derives from the
// caller's, so it is done when the caller's is, and Terminate cancels it
// with cause ErrTerminated through the slot, without an AfterFunc on the
// pool's context.
//
// A worker keeps its context from one task to the next as long as they
// come with the same caller's context: a loop that submits many tasks
// under one request's context then costs no context per task. The context
// is therefore not cancelled when a task returns, as the pool's own, which
// tasks submitted with context.Background() get, is not; it is released
// when a task with another context comes, or when the worker exits. Made
// when a worker starts a task and not at submission, there are at most as
// many of them as workers, whatever the length of the queue.
type taskSlot struct {
	// parent is the caller's context that ctx derives from. Only the
	// worker reads and writes it, and ctx.
	parent context.Context
	// reusable reports whether parent can be compared with ==: a context
	// of a struct type with a slice in it would make == panic.
	reusable bool
	ctx      context.Context
	// mu guards cancel, which Terminate calls from another goroutine.
	mu     sync.Mutex
	cancel context.CancelCauseFunc
}

// context returns the context of a task submitted with parent, which can be
// done.
func (s *taskSlot) context(p *Pool, parent context.Context) context.Context {
	// A cached context was cancelled only if its parent is done or the
	// pool terminated: the task fails either way, with the right cause.
	if s.reusable && s.parent == parent {
		return s.ctx
	}
	s.release()
	ctx, cancel := context.WithCancelCause(parent)
	s.mu.Lock()
	s.parent, s.ctx, s.cancel = parent, ctx, cancel
	s.mu.Unlock()
	s.reusable = reflect.TypeOf(parent).Comparable()
	if p.ctx.Err() != nil {
		// Terminate may have passed this slot before cancel was in it.
		cancel(ErrTerminated)
	}
	return ctx
}

// release cancels the slot's context, which detaches it from its parent,
// and empties the slot.
func (s *taskSlot) release() {
	s.mu.Lock()
	cancel := s.cancel
	s.parent, s.ctx, s.cancel = nil, nil, nil
	s.mu.Unlock()
	s.reusable = false
	if cancel != nil {
		cancel(nil)
	}
}

// terminate cancels the slot's context with cause ErrTerminated.
func (s *taskSlot) terminate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel(ErrTerminated)
	}
}

// Option configures a [Pool]. Options are created by functions of this
// package, such as [QueueSize].
type Option interface {
	apply(*config)
}

type config struct {
	queueSize int
	proc      procConfig // the options of a process pool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// QueueSize sets how many submitted units may wait for a worker before
// submission blocks. The default is max(1024, 4*workers). An item of
// MapSeq takes one entry; a Map call takes one per chunk on a process
// pool and at most one per worker on a goroutine pool. QueueSize panics
// if n < 1.
func QueueSize(n int) Option {
	if n < 1 {
		panic("mp: QueueSize must be at least 1")
	}
	return optionFunc(func(c *config) { c.queueSize = n })
}

// MapOption configures one call of [Map].
type MapOption interface {
	applyMap(*mapConfig)
}

type mapConfig struct {
	chunkSize int
}

type mapOptionFunc func(*mapConfig)

func (f mapOptionFunc) applyMap(c *mapConfig) { f(c) }

// ChunkSize makes [Map] hand items to the workers at least n at a time:
// the chunksize argument of Python's Pool.map.
//
// On a process pool, n is the size of every chunk, which travels as one
// message; without ChunkSize Map picks ceil(len(items) / (4*workers)),
// which keeps every worker busy while costing one round trip per chunk
// instead of one per item.
//
// On a goroutine pool, n is the smallest batch a worker takes from the
// items (default 1): it starts with n items and takes more as they prove
// fast, fewer again as the items run out, never fewer than n but for the
// last batch (see [Map]). A larger n saves claims when items are known to
// be tiny, at the price of items held back behind a slow one.
//
// ChunkSize panics if n < 1.
func ChunkSize(n int) MapOption {
	if n < 1 {
		panic("mp: ChunkSize must be at least 1")
	}
	return mapOptionFunc(func(c *mapConfig) { c.chunkSize = n })
}

// Pool is a fixed set of workers that run tasks: the analogue of Python's
// multiprocessing.pool.ThreadPool and concurrent.futures.ThreadPoolExecutor
// (and, with a process back-end, of multiprocessing.Pool). Tasks are
// submitted with [Map], [MapSeq], [MapSeqUnordered], [Apply], [ApplyAsync]
// and [Pool.Go]; at most the pool's number of workers run at once.
//
// A Pool is safe for concurrent use by multiple goroutines. The zero value
// is not usable; use [NewPool] or [NewProcessPool]. Its worker goroutines live from NewPool
// until the pool has been closed (or terminated) and its queue drained;
// call [Pool.Join] to wait for that. A Pool must not be copied.
//
// Submitting a trivial task with [Pool.Go] costs a few tens of nanoseconds
// and allocates nothing; BenchmarkGo in pool_bench_test.go measures it
// against hand-written workers ranging over a buffered channel.
type Pool struct {
	workers int
	be      backend

	// q is the queue of units (see pool_queue.go). Its head and tail have
	// cache lines of their own.
	q taskQueue

	// idle counts the workers that wait for a unit (see pool_queue.go);
	// the sleepers among them wait for a token on wake, which has room
	// for one token per worker.
	idle atomic.Int64
	wake chan struct{}

	// gate is gateClosing once Close or Terminate has been called, plus
	// gateWaiter for each submission waiting for room, which Close lets
	// through before it closes the queue.
	gate atomic.Int64

	roomState

	// ctx is the context of every task that runs on the pool; Terminate
	// cancels it with cause ErrTerminated. It is the pool's own, not a
	// caller's, and lives as long as the pool.
	ctx    context.Context
	cancel context.CancelCauseFunc

	// terminated is set by Terminate so that workers fail what is left in
	// the queue instead of running it.
	terminated atomic.Bool

	// drained counts the units failed with ErrTerminated without a worker
	// taking them, for Stats; termTaken counts those of them that
	// Terminate took from the queue.
	drained, termTaken atomic.Int64

	// counters holds the Stats counters, sharded by worker on cache lines
	// of their own, so that counting costs the hot path little.
	counters []counters
	// shared reports whether several workers count in one shard.
	shared bool

	// mu guards the fields below.
	mu     sync.Mutex
	live   int           // workers still running plus callbacks running
	exited chan struct{} // closed when live drops to zero
	joined bool
	errs   []error       // errors nobody can collect: Go's, callbacks' panics
	owed   []collectible // results that failed and may not be collected yet
	// owedMax is the length of owed past which owe drops the results
	// collected meanwhile, so that a long-lived pool does not keep every
	// failed result.
	owedMax int
}

// counters are the Stats counters of one shard of workers: worker i counts
// in shard i % maxShards. A shard of one worker is written by that worker
// alone, so its increment is a load and a store rather than a
// read-modify-write. A fixed number of shards keeps them in cache however
// many workers there are.
type counters struct {
	started, completed, failed atomic.Int64
	_                          [104]byte
}

const maxShards = 16

// inc adds one to c, which only the calling worker writes unless shared.
func inc(c *atomic.Int64, shared bool) {
	if shared {
		c.Add(1)
	} else {
		c.Store(c.Load() + 1)
	}
}

// collectible is a failed result whose error Join reports unless a caller
// collected it first.
type collectible interface {
	// uncollected returns the error and true, once, if nobody collected it.
	uncollected() (error, bool)
	// collected reports whether a caller has collected the error.
	collected() bool
}

// NewPool returns a pool of workers goroutines: the analogue of Python's
// ThreadPool(workers). NewPool(0) uses runtime.GOMAXPROCS(0) workers. A
// negative count panics.
func NewPool(workers int, opts ...Option) *Pool {
	if workers < 0 {
		panic("mp: negative worker count")
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return newPool(workers, &goroutines{slots: make([]taskSlot, workers)}, opts)
}

func newPool(workers int, be backend, opts []Option) *Pool {
	c := config{queueSize: max(1024, 4*workers)}
	for _, o := range opts {
		o.apply(&c)
	}
	p := &Pool{
		workers:  workers,
		be:       be,
		counters: make([]counters, min(workers, maxShards)),
		wake:     make(chan struct{}, workers),
		shared:   workers > maxShards,
		live:     workers,
		exited:   make(chan struct{}),
	}
	p.q.init(c.queueSize)
	p.ctx, p.cancel = context.WithCancelCause(context.Background())
	for i := range workers {
		go func() {
			defer p.release()
			be.work(p, i)
		}()
	}
	return p
}

// Workers returns the number of workers of the pool.
func (p *Pool) Workers() int { return p.workers }

// next returns the next unit of the queue, waiting for one, or false once
// the queue has been closed and drained. After Terminate it fails every
// unit it takes instead of returning it. It is the loop of a goroutine
// worker, which counts in shard i.
func (p *Pool) next(i int) (unit, bool) {
	for {
		u, ok := p.get()
		if !ok {
			return nil, false
		}
		if !p.terminated.Load() {
			return u, true
		}
		// Stats counts it as started when taken.
		inc(&p.counters[i%maxShards].failed, p.shared)
		u.fail(p, ErrTerminated)
	}
}

// get returns the next unit of the queue, waiting for one, or false once
// the queue has been closed and drained.
func (p *Pool) get() (unit, bool) {
	if u, r := p.take(); r == took {
		return u, true
	}
	return p.await()
}

// exec runs u on the calling goroutine and updates the counters.
// Stats counts u as started once taken from the queue.
func (p *Pool) exec(i int, u unit) {
	c := &p.counters[i%maxShards]
	if u.run(p) {
		inc(&c.failed, p.shared)
	} else {
		inc(&c.completed, p.shared)
	}
}

func callGo(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f(ctx)
}

// release ends one worker or callback goroutine.
func (p *Pool) release() {
	p.mu.Lock()
	p.live--
	if p.live == 0 {
		close(p.exited)
	}
	p.mu.Unlock()
}

// report records an error that no caller can collect, for Join.
func (p *Pool) report(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// owe records a failed result whose error Join reports if nobody collects it.
func (p *Pool) owe(c collectible) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.owed) >= p.owedMax {
		p.owed = slices.DeleteFunc(p.owed, collectible.collected)
		p.owedMax = max(64, 2*len(p.owed))
	}
	p.owed = append(p.owed, c)
}

// Go submits f to run on a worker and returns at once, without a result to
// wait for: the analogue of ThreadPoolExecutor.submit when the future is
// dropped, and of errgroup's Go. The error f returns, or a panic in f as a
// *[PanicError], is reported by [Pool.Join], so nothing is lost. f gets the
// pool's context, cancelled with cause [ErrTerminated] by
// [Pool.Terminate].
//
// Go blocks only while the pool's queue is full (see [QueueSize]), until a
// worker takes a unit or [Pool.Terminate] makes room (the task then
// resolves with [ErrTerminated], reported by Join). It returns [ErrClosed]
// after [Pool.Close] or [Pool.Terminate], and nil otherwise. Go allocates
// nothing.
func (p *Pool) Go(f func(ctx context.Context) error) error {
	if p.remote() != nil {
		return errGoOnProcessPool
	}
	return p.submit(context.Background(), goFunc(f))
}

// Close stops the pool from accepting tasks: the analogue of Python's
// Pool.close and Executor.shutdown(wait=False). Tasks already submitted
// still run; the workers exit once the queue is drained. Submitting after
// Close returns [ErrClosed]; submissions already blocked on a full queue
// still go through. Close returns at once; calling it again, or after
// [Pool.Terminate], does nothing.
func (p *Pool) Close() {
	// Submissions blocked on a full queue are counted in gate; the last of
	// them to get through closes the queue, so that Close never waits for
	// them: a task may close its own pool.
	if p.gate.Or(gateClosing) == 0 {
		p.closeQueue()
	}
}

// Terminate stops the pool at once: the analogue of Python's
// Pool.terminate and Executor.shutdown(cancel_futures=True). Tasks still
// queued do not run and resolve with [ErrTerminated]; running tasks see
// their context cancelled with cause ErrTerminated, and the error they
// return is kept as their result. After Terminate every result resolves,
// so [AsyncResult.Get] never hangs (Python's gh-79659). Submitting after
// Terminate returns [ErrClosed]. Terminate returns without waiting for
// running tasks; [Pool.Join] waits for them. Calling it again does
// nothing.
//
// Goroutines cannot be preempted: a running task that ignores its context
// keeps its worker until it returns.
func (p *Pool) Terminate() {
	if p.terminated.Swap(true) {
		return
	}
	// Cancelling the pool's context also fails the submissions blocked on
	// a full queue.
	p.cancel(ErrTerminated)
	p.Close()
	p.be.terminate()
	// Fail what is queued now rather than when a worker comes by, which a
	// task that ignores its context may delay. Workers fail what comes
	// later.
	for {
		u, r := p.take()
		if r != took {
			return
		}
		p.termTaken.Add(1)
		p.drained.Add(1)
		u.fail(p, ErrTerminated)
	}
}

// Join waits for the workers to exit, after [Pool.Close] or
// [Pool.Terminate]: the analogue of Python's Pool.join, and of
// [sync.WaitGroup.Wait] for the pool's tasks. It blocks until every queued
// task has run (or, after Terminate, been failed) and every running task
// and callback (see [AsyncResult.Then]) has returned, or ctx is done.
//
// On success Join returns [errors.Join] of the errors nobody collected:
// those of [Pool.Go] tasks, those of results whose error no [AsyncResult.Get]
// or callback received, and panics of callbacks. Each is reported once: a
// second Join does not repeat them. If ctx is done first, Join returns
// context.Cause(ctx) and the pool keeps running.
//
// Join panics if the pool has not been closed or terminated, as Python's
// Pool.join raises ValueError: it would wait for ever.
func (p *Pool) Join(ctx context.Context) error {
	if p.gate.Load()&gateClosing == 0 {
		panic("mp: Pool.Join called before Close or Terminate")
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.joined {
		return nil
	}
	p.joined = true
	errs := p.errs
	for _, c := range p.owed {
		if err, ok := c.uncollected(); ok {
			errs = append(errs, err)
		}
	}
	p.errs, p.owed = nil, nil
	return errors.Join(errs...)
}

// PoolStats is a snapshot of a [Pool]'s counters, as returned by
// [Pool.Stats]. Each field is read atomically, but not all at the same
// instant, so their sum may be off by the tasks that moved meanwhile.
type PoolStats struct {
	// Workers is the pool's number of workers.
	Workers int
	// Running counts the units being executed now.
	Running int
	// Queued counts the units submitted and not yet taken by a worker.
	Queued int
	// Completed counts the units that ended without an error.
	Completed int
	// Failed counts the units that ended with an error or a panic, or
	// that Terminate kept from running.
	Failed int
}

// Stats returns a snapshot of the pool's counters. A unit is one task of
// [Pool.Go], [ApplyAsync], [Apply] or [MapSeq], or, for [Map], one chunk
// on a process pool and one puller on a goroutine pool: a worker's share
// of the call, which runs batches of its items until none is left, and
// which fails if an item it ran failed. A Map call on a goroutine pool
// thus counts as at most Workers units, however many items it has.
// Stats is cheap (a few atomic loads) and safe to call at any time.
func (p *Pool) Stats() PoolStats {
	s := PoolStats{Workers: p.workers, Failed: int(p.drained.Load())}
	var started, ended int64
	taken := -p.termTaken.Load()
	// Read the end counters before what they end, so that Running is
	// never negative.
	for i := range p.counters {
		c := &p.counters[i]
		done, failed := c.completed.Load(), c.failed.Load()
		started += c.started.Load()
		ended += done + failed
		s.Completed += int(done)
		s.Failed += int(failed)
	}
	head := p.q.head.Load()
	if p.remote() == nil {
		// A goroutine worker starts every unit it takes from the queue,
		// and counting them there spares it a counter per unit.
		started = taken + int64(head)
	}
	s.Running = int(started - ended)
	if t := p.q.tail.Load() &^ closedBit; t > head {
		s.Queued = int(t - head)
	}
	return s
}

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

// startCallback runs cb on a new goroutine that Join waits for. If the pool
// has already been joined, nothing is left to wait, and cb runs on the
// calling goroutine.
func (p *Pool) startCallback(cb func()) {
	p.mu.Lock()
	if p.live == 0 {
		p.mu.Unlock()
		p.runCallback(cb)
		return
	}
	p.live++
	p.mu.Unlock()
	go func() {
		defer p.release()
		p.runCallback(cb)
	}()
}

func (p *Pool) runCallback(cb func()) {
	defer func() {
		if v := recover(); v != nil {
			p.report(&PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	cb()
}

// applyJob is the job of ApplyAsync. The result lives inside it, so that a
// submission costs one allocation.
type applyJob[A, R any] struct {
	res AsyncResult[R]
	f   Func[A, R]
	arg A
	// ctx is the caller's context, nil if it can never be done.
	ctx context.Context
	// slot is the context slot of the worker that runs the job.
	slot *taskSlot
}

func (j *applyJob[A, R]) useSlot(s *taskSlot) { j.slot = s }

func (j *applyJob[A, R]) run(p *Pool) bool {
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
	var zero R
	j.finish(zero, err)
}

func (j *applyJob[A, R]) finish(v R, err error) {
	j.ctx, j.slot = nil, nil
	var zero A
	j.arg = zero
	j.res.resolve(v, err)
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
	if p.remote() != nil {
		return applyRemote(ctx, p, f, arg)
	}
	j := &applyJob[A, R]{f: f, arg: arg}
	j.res.init(p)
	if ctx.Done() != nil {
		j.ctx = ctx
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
	r := ApplyAsync(ctx, p, f, arg)
	v, err := r.Get(ctx)
	if err != nil {
		// The caller has its error; if it was ctx's, the task's own error
		// follows from that cancellation and is not worth a report.
		r.taken.Store(true)
	}
	return v, err
}

// mapState is shared by the units of one Map call.
type mapState[A, R any] struct {
	f       Func[A, R]
	items   []A
	results []R
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stopped atomic.Bool // set by the first error, read before each item
	once    sync.Once
	err     error
	// left counts what has yet to end before Map returns: the chunks on a
	// process pool, the items on a goroutine pool.
	left atomic.Int64
	done chan struct{}
	// cursor is the first item that no puller has claimed. The first stop
	// claims the rest, so that skipped items count as ended. A process
	// pool's Map, which sends static chunks, starts it at len(items).
	cursor atomic.Int64
	// minBatch is the smallest batch a puller claims; the guided batch is
	// what is left divided by spread.
	minBatch, spread int
}

func newMapState[A, R any](ctx context.Context, f Func[A, R], items []A) *mapState[A, R] {
	m := &mapState[A, R]{
		f:       f,
		items:   items,
		results: make([]R, len(items)),
		done:    make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancelCause(ctx)
	m.cursor.Store(int64(len(items)))
	return m
}

// stop ends the Map with err unless it has already stopped or returned.
func (m *mapState[A, R]) stop(err error) {
	m.once.Do(func() {
		m.err = err
		m.stopped.Store(true)
		m.cancel(err)
		n := int64(len(m.items))
		if rest := m.cursor.Swap(n); rest < n {
			m.settle(n - rest)
		}
	})
}

// end counts one chunk of a process pool's Map as ended.
func (m *mapState[A, R]) end() { m.settle(1) }

// settle counts k > 0 more chunks or items as ended.
func (m *mapState[A, R]) settle(k int64) {
	if m.left.Add(-k) == 0 {
		close(m.done)
	}
}

// wait waits for everything to end and returns the outcome of the Map.
func (m *mapState[A, R]) wait() ([]R, error) {
	<-m.done
	// A stop that comes now, from Terminate or from a puller that reached
	// the queue's head late, changes nothing: the results are all in.
	m.once.Do(func() {})
	if m.err != nil {
		return nil, m.err
	}
	return m.results, nil
}

// batchTime is about how long a batch of a goroutine pool's Map may take:
// a puller doubles its batch while its last batch took less than half of
// it. It bounds the items that a slow item among fast ones holds back,
// while keeping the claims of tiny items rare enough to cost nothing.
const batchTime = 100 * time.Microsecond

// mapPuller is a unit of a goroutine pool's Map: one worker's share of
// the guided self-scheduling. It claims batches of items from the shared
// cursor and runs them until none is left or the Map has stopped. Being
// pointer-shaped and stateless, the same value is queued once per puller
// without allocating.
type mapPuller[A, R any] struct{ m *mapState[A, R] }

func (u mapPuller[A, R]) run(*Pool) bool {
	m := u.m
	n := len(m.items)
	// A batch starts at the minimum, so that a slow item at the start
	// holds back no other, and doubles while items run fast.
	size := m.minBatch
	start := time.Now()
	for !m.stopped.Load() {
		// Guided: never more than a share of what is left, so that the
		// last batches are small and the workers end together.
		b := size
		if g := (n - int(m.cursor.Load())) / m.spread; g < b {
			b = max(g, m.minBatch)
		}
		lo := int(m.cursor.Add(int64(b))) - b
		if lo >= n {
			return false
		}
		if m.runBatch(lo, min(lo+b, n)) {
			return true
		}
		now := time.Now()
		switch d := now.Sub(start); {
		case d < batchTime/2:
			size = min(2*size, n)
		case d > batchTime:
			size = max(size/2, m.minBatch)
		}
		start = now
	}
	return false
}

// fail stops the Map if the puller cannot run; a puller that never runs
// holds no item, so the others finish them unless the Map stops.
func (u mapPuller[A, R]) fail(_ *Pool, err error) { u.m.stop(err) }

// runBatch runs items[lo:hi], which the calling puller has claimed, and
// counts them as ended, run or skipped.
func (m *mapState[A, R]) runBatch(lo, hi int) (failed bool) {
	defer m.settle(int64(hi - lo))
	defer func() {
		if v := recover(); v != nil {
			m.stop(&PanicError{Value: v, Stack: debug.Stack()})
			failed = true
		}
	}()
	if m.ctx.Err() != nil {
		m.stop(context.Cause(m.ctx))
		return true
	}
	f, ctx, items, results := m.f, m.ctx, m.items[lo:hi], m.results[lo:hi]
	for i := range items {
		if m.stopped.Load() {
			return false
		}
		r, err := f(ctx, items[i])
		if err != nil {
			m.stop(err)
			return true
		}
		results[i] = r
	}
	return false
}

// Map applies f to every item on the pool's workers and returns the results
// in the order of items: the analogue of Python's Pool.map and
// Executor.map. Items are handed out in batches, never one task per item
// unless asked (see [ChunkSize]).
//
// On a pool of [NewPool], the workers pull the items from a shared cursor
// (guided self-scheduling): each worker takes a batch of ChunkSize items
// (default 1), doubles it while its batches run in under about 50 µs,
// halves it when they take over about 100 µs, and never takes more than a
// share of what is left, so that the workers end together. Only the rest
// of its own batch waits behind a slow item; the other workers go on.
// Items that take longer than about 50 µs each are therefore taken one at
// a time (with the default ChunkSize), and an item that fails is seen as
// soon as it has run, whatever runs beside it. A batch of many items is
// taken only after such items ran fast: a slow item among them may keep
// the rest of its batch, a failure there included, waiting, which is the
// price of claiming tiny items a batch at a time rather than one by one.
// On a process pool, Map sends static chunks instead, each as one
// message.
//
// Map blocks until every item has been processed or the call has failed.
// The first error in time wins: the tasks still running see their context
// cancelled with that error as cause, items not yet started are skipped,
// and Map returns that error with a nil slice once the running tasks have
// returned; later errors are dropped, as errgroup drops them. A panic in f
// is such an error, a *[PanicError]. When ctx is done, or the pool is
// terminated, Map fails with context.Cause of it. After [Pool.Close] Map
// returns [ErrClosed].
//
// A goroutine pool's Map takes at most one queue entry per worker. Called
// from a task of the same pool, it needs another worker to be free, as
// every call that waits for tasks of that pool does.
//
// Map costs a few allocations per call besides the result slice and
// nothing per item.
func Map[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, opts ...MapOption) ([]R, error) {
	var c mapConfig
	for _, o := range opts {
		o.applyMap(&c)
	}
	if p.gate.Load()&gateClosing != 0 {
		return nil, ErrClosed
	}
	if len(items) == 0 {
		return []R{}, nil
	}
	if p.remote() == nil {
		return mapLocal(ctx, p, f, items, max(c.chunkSize, 1))
	}
	size := c.chunkSize
	if size == 0 {
		size = (len(items) + 4*p.workers - 1) / (4 * p.workers)
	}
	return mapRemote(ctx, p, f, items, size, (len(items)+size-1)/size)
}

// mapLocal is Map on a goroutine pool: it queues a puller per worker (or
// per minBatch items, if fewer) and waits for the items, not for the
// pullers: one that reaches the head of the queue after the others have
// finished the work finds nothing left and returns at once.
func mapLocal[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, minBatch int) ([]R, error) {
	m := newMapState(ctx, f, items)
	m.minBatch, m.spread = minBatch, 2*p.workers
	// Before anything can stop the Map: stop settles what is unclaimed.
	m.left.Store(int64(len(items)))
	m.cursor.Store(0)
	defer m.cancel(nil)
	defer context.AfterFunc(p.ctx, func() { m.stop(context.Cause(p.ctx)) })()
	if ctx.Done() != nil {
		// Stop at once when ctx is done, also while no puller runs.
		defer context.AfterFunc(ctx, func() { m.stop(context.Cause(ctx)) })()
	}
	u := mapPuller[A, R]{m}
	for i := range min(p.workers, (len(items)+minBatch-1)/minBatch) {
		if m.stopped.Load() {
			break
		}
		if err := p.submit(m.ctx, u); err != nil {
			// A puller already queued finishes the items unless the Map
			// stops, which Terminate and ctx see to.
			if i == 0 {
				m.stop(err)
			}
			break
		}
	}
	return m.wait()
}

// runMap runs the n chunks of size items of a process pool's Map call,
// chunk(m, i, lo, hi) making the unit of chunk i, and waits for all of
// them: the first error stops the rest, and Terminate stops them with its
// cause.
func runMap[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, size, n int, chunk func(m *mapState[A, R], i, lo, hi int) unit) ([]R, error) {
	m := newMapState(ctx, f, items)
	defer m.cancel(nil)
	defer context.AfterFunc(p.ctx, func() { m.stop(context.Cause(p.ctx)) })()
	m.left.Store(int64(n))
	for i := range n {
		u := chunk(m, i, i*size, min((i+1)*size, len(items)))
		if m.stopped.Load() {
			u.fail(p, m.err)
			continue
		}
		if err := p.submit(m.ctx, u); err != nil {
			u.fail(p, err)
		}
	}
	return m.wait()
}

// seqState is shared by the items of one MapSeq or MapSeqUnordered loop.
type seqState[A, R any] struct {
	f     Func[A, R]
	ctx   context.Context
	ended chan int // indexes of slots whose task ended; never blocks
	// header names the registered task on a process pool.
	header []byte
}

// seqSlot is the job of one item of a MapSeq loop. Slots are reused, so
// that streaming allocates nothing per item.
type seqSlot[A, R any] struct {
	s   *seqState[A, R]
	i   int
	arg A
	val R
	err error
}

func (j *seqSlot[A, R]) run(*Pool) bool {
	if ctx := j.s.ctx; ctx.Err() != nil {
		j.err = context.Cause(ctx)
	} else {
		j.val, j.err = callTask(ctx, j.s.f, j.arg)
	}
	// The slot belongs to the loop again once sent: read it before.
	failed := j.err != nil
	j.s.ended <- j.i
	return failed
}

func (j *seqSlot[A, R]) fail(_ *Pool, err error) {
	j.err = err
	j.s.ended <- j.i
}

// take returns the slot's outcome and clears it for reuse.
func (j *seqSlot[A, R]) take() (R, error) {
	v, err := j.val, j.err
	var zr R
	var za A
	j.val, j.err, j.arg = zr, nil, za
	return v, err
}

// mapSeq is the body of MapSeq (ordered) and MapSeqUnordered.
func mapSeq[A, R any](ctx context.Context, p *Pool, f Func[A, R], items iter.Seq[A], ordered bool) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer context.AfterFunc(p.ctx, func() { cancel(context.Cause(p.ctx)) })()
		// The look-ahead: at most this many items are read ahead of the
		// caller, queued or running.
		window := 2 * p.workers
		s := &seqState[A, R]{f: f, ctx: ctx, ended: make(chan int, window)}
		if p.remote() != nil {
			e, err := registered(f)
			if err != nil {
				var zero R
				yield(zero, err)
				return
			}
			s.header = []byte(e.name)
		}
		slots := make([]seqSlot[A, R], window)
		ready := make([]bool, window)
		free := make([]int, 0, window) // unordered: slots not in use
		for i := range slots {
			slots[i] = seqSlot[A, R]{s: s, i: i}
			free = append(free, window-1-i)
		}
		head, count := 0, 0 // ordered: slots in use are head..head+count-1
		inflight := 0       // slots whose end has not been received
		// Breaking out of the loop, or a panic in it, cancels what is
		// outstanding and waits for it, so that no task outlives the loop.
		defer func() {
			cancel(nil)
			for ; inflight > 0; inflight-- {
				<-s.ended
			}
		}()
		receive := func() int {
			i := <-s.ended
			inflight--
			ready[i] = true
			return i
		}
		// emit yields one outcome, waiting for it if needed.
		emit := func() bool {
			var i int
			if ordered {
				i = head
				for !ready[i] {
					receive()
				}
				head = (head + 1) % window
				count--
			} else {
				i = receive()
				free = append(free, i)
			}
			ready[i] = false
			return yield(slots[i].take())
		}
		for item := range items {
			if (ordered && count == window) || (!ordered && len(free) == 0) {
				if !emit() {
					return
				}
			}
			var i int
			if ordered {
				i = (head + count) % window
				count++
			} else {
				i = free[len(free)-1]
				free = free[:len(free)-1]
			}
			slots[i].arg = item
			inflight++
			if err := p.submit(ctx, &slots[i]); err != nil {
				// The pool is closed or ctx is done: every later item would
				// fail the same way, so the sequence ends after this one.
				slots[i].fail(p, err)
				break
			}
		}
		for (ordered && count > 0) || (!ordered && inflight > 0) {
			if !emit() {
				return
			}
		}
	}
}

// MapSeq applies f to every item on the pool's workers and yields the
// results in the order of items, as they become available: the analogue of
// Python's Pool.imap and Executor.map. It yields (result, err) for each
// item and goes on after an error until the caller breaks out of the loop;
// a panic in f yields a *[PanicError] for that item.
//
// MapSeq never reads the whole input first: at most 2×workers items are
// read ahead of the loop, queued or running. Each item is one task.
// Breaking out of the loop cancels the context of the tasks still
// outstanding and waits for them to return before the loop ends, so no
// task outlives it. Their errors are not reported anywhere: the caller
// stopped listening. When ctx is done or the pool is closed or terminated,
// the item being submitted yields that error and the sequence ends after
// the items already submitted.
//
// The sequence may be ranged over several times; each range runs the tasks
// again. Streaming allocates nothing per item.
func MapSeq[A, R any](ctx context.Context, p *Pool, f Func[A, R], items iter.Seq[A]) iter.Seq2[R, error] {
	return mapSeq(ctx, p, f, items, true)
}

// MapSeqUnordered is like [MapSeq] but yields the results in the order the
// tasks end: the analogue of Python's Pool.imap_unordered and
// concurrent.futures.as_completed. A result carries no index; return one
// from f if the caller needs to know which item it came from.
func MapSeqUnordered[A, R any](ctx context.Context, p *Pool, f Func[A, R], items iter.Seq[A]) iter.Seq2[R, error] {
	return mapSeq(ctx, p, f, items, false)
}
