package mp

import (
	"context"

	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/backend"
)

// Pool is a fixed set of workers that run tasks: the analogue of Python's
// multiprocessing.pool.ThreadPool and concurrent.futures.ThreadPoolExecutor
// (and, with a process back-end, of multiprocessing.Pool). Tasks are
// submitted with [Map], [MapSeq], [MapSeqUnordered], [Apply], [ApplyAsync]
// and [Pool.Go]; at most the pool's number of workers run at once.
//
// A Pool is safe for concurrent use by multiple goroutines. The zero value
// is not usable; use [NewPool], [NewProcessPool] or [NewPoolOn]. Its
// worker goroutines live from the constructor until the pool has been
// closed (or terminated) and its queue drained; call [Pool.Join] to wait
// for that. A Pool must not be copied. A task's return "synchronizes
// before" the return of the Get, Map or MapSeq step that hands over its
// result.
//
// Submitting a trivial task with [Pool.Go] costs a few tens of nanoseconds
// and allocates nothing; BenchmarkGo in pool_bench_test.go measures it
// against hand-written workers ranging over a buffered channel.
type Pool struct {
	workers int
	be      backend.Backend
	// remote is be.Remote(): tasks leave this process, so they must be
	// registered functions with encodable arguments.
	remote bool

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
	// shared reports whether several goroutines count in one shard.
	shared bool
	// queues holds the queue each worker's back-end sees.
	queues []workerQueue

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
// in shard i % maxShards. A shard of one goroutine worker is written by
// that worker alone, so its increment is a load and a store rather than a
// read-modify-write. The workers of a remote back-end are not alone (mp's
// process back-end counts a task's end on its connection's reader, see
// earlyResult), and their round trips dwarf an atomic add. A fixed number
// of shards keeps them in cache however many workers there are.
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
	return newPool(workers, &goroutines{slots: make([]taskSlot, workers)}, configure(workers, opts))
}

// newPool starts a pool of workers workers on be.
func newPool(workers int, be backend.Backend, c config) *Pool {
	p := &Pool{
		workers:  workers,
		be:       be,
		remote:   be.Remote(),
		counters: make([]counters, min(workers, maxShards)),
		queues:   make([]workerQueue, workers),
		wake:     make(chan struct{}, workers),
		shared:   workers > maxShards || be.Remote(),
		live:     workers,
		exited:   make(chan struct{}),
	}
	p.q.init(c.queueSize)
	p.ctx, p.cancel = context.WithCancelCause(context.Background())
	for i := range workers {
		q := &p.queues[i]
		q.p, q.c = p, &p.counters[i%maxShards]
		go func() {
			defer p.release()
			be.Work(i, q)
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

// release ends one worker or callback goroutine.
func (p *Pool) release() {
	p.mu.Lock()
	p.live--
	if p.live == 0 {
		close(p.exited)
	}
	p.mu.Unlock()
}

// submitError is the error of a call whose submission failed with err: a
// Map or MapSeq under way when the pool was terminated fails with the
// termination's cause, not the ErrClosed of its next submission.
func (p *Pool) submitError(err error) error {
	if p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	return err
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
	if p.remote {
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
	p.be.Terminate()
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
	if !p.remote {
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
