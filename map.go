package mp

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

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
	// unwatch stops the watches that stop the Map when the pool is
	// terminated or the caller's ctx ends; wait calls them.
	unwatch []func() bool
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
	defer m.cancel(nil)
	defer func() {
		for _, stop := range m.unwatch {
			stop()
		}
	}()
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
	m, err := startMap(ctx, p, f, items, opts)
	if err != nil {
		return nil, err
	}
	return m.wait()
}

// startMap submits the items of a Map call and returns its state, whose
// wait returns the outcome.
func startMap[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, opts []MapOption) (*mapState[A, R], error) {
	var c mapConfig
	for _, o := range opts {
		o.applyMap(&c)
	}
	if p.gate.Load()&gateClosing != 0 {
		return nil, ErrClosed
	}
	if !p.remote {
		return startLocal(ctx, p, f, items, max(c.chunkSize, 1)), nil
	}
	size := c.chunkSize
	if size == 0 {
		size = max(1, (len(items)+4*p.workers-1)/(4*p.workers))
	}
	return startRemote(ctx, p, f, items, size, (len(items)+size-1)/size)
}

// startLocal starts Map on a goroutine pool: it queues a puller per
// worker (or per minBatch items, if fewer); wait waits for the items, not
// for the pullers: one that reaches the head of the queue after the
// others have finished the work finds nothing left and returns at once.
func startLocal[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, minBatch int) *mapState[A, R] {
	m := newMapState(ctx, f, items)
	if len(items) == 0 {
		close(m.done)
		return m
	}
	m.minBatch, m.spread = minBatch, 2*p.workers
	// Before anything can stop the Map: stop settles what is unclaimed.
	m.left.Store(int64(len(items)))
	m.cursor.Store(0)
	m.unwatch = append(m.unwatch, context.AfterFunc(p.ctx, func() { m.stop(context.Cause(p.ctx)) }))
	if ctx.Done() != nil {
		// Stop at once when ctx is done, also while no puller runs.
		m.unwatch = append(m.unwatch, context.AfterFunc(ctx, func() { m.stop(context.Cause(ctx)) }))
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
				m.stop(p.submitError(err))
			}
			break
		}
	}
	return m
}
