package mp

import (
	"context"
	"iter"
	"sync"
)

// Cancel keeps a task that has not started from running: the analogue of
// Python's Future.cancel. It reports whether it did; the result then
// resolves at once with context.Canceled, which counts as collected
// ([Pool.Join] does not report it). Cancel on a task that a worker has
// taken — running, finished, or on a process pool already sent to a
// worker process, which takes a few tasks ahead — returns false and
// changes nothing; cancel the ctx given to [ApplyAsync] to stop a running
// task. Results that do not come from ApplyAsync, such as
// [MapAsync]'s, cannot be cancelled: Cancel returns false.
func (r *AsyncResult[R]) Cancel() bool {
	if !r.state.CompareAndSwap(jobQueued, jobCancelled) {
		return false
	}
	// The caller who cancelled knows: the error counts as collected.
	var zero R
	r.taken.Store(true)
	r.resolve(zero, context.Canceled)
	return true
}

// AsCompleted yields the results rs as they complete, each once, in the
// order in which they complete: the analogue of Python's
// concurrent.futures.as_completed. Results already complete come first.
// The sequence ends when every result has been yielded, when the loop
// breaks, or when ctx is done, which the loop can tell by checking ctx
// (as_completed's TimeoutError). A result that appears more than once in
// rs is yielded once.
//
// AsCompleted starts one goroutine per pending result while the loop
// runs; they end before the sequence does, whichever way it ends.
func AsCompleted[R any](ctx context.Context, rs ...*AsyncResult[R]) iter.Seq[*AsyncResult[R]] {
	return func(yield func(*AsyncResult[R]) bool) {
		seen := make(map[*AsyncResult[R]]bool, len(rs))
		var pending []*AsyncResult[R]
		for _, r := range rs {
			if r == nil || seen[r] {
				continue
			}
			seen[r] = true
			if r.Ready() {
				if !yield(r) {
					return
				}
				continue
			}
			pending = append(pending, r)
		}
		if len(pending) == 0 {
			return
		}
		stop := make(chan struct{})
		done := make(chan *AsyncResult[R], len(pending))
		var wg sync.WaitGroup
		defer func() {
			close(stop)
			wg.Wait()
		}()
		for _, r := range pending {
			wg.Go(func() {
				select {
				case <-r.Done():
					done <- r
				case <-stop:
				}
			})
		}
		for range pending {
			select {
			case r := <-done:
				if !yield(r) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// MapAsync is the asynchronous form of [Map]: it submits the items, as Map
// does, before it returns, and the returned result resolves with what Map
// would have returned: the analogue of Python's Pool.map_async. So
// [Pool.Close] right after MapAsync does not keep the items from running.
// ctx bounds the whole call, as it bounds Map. One goroutine waits for the
// items and resolves the result; it ends when they have all ended, and
// [Pool.Join] waits for it. Like
// ApplyAsync's, the result's error, if nobody collects it, is reported by
// [Pool.Join].
func MapAsync[A, R any](ctx context.Context, p *Pool, f Func[A, R], items []A, opts ...MapOption) *AsyncResult[[]R] {
	r := &AsyncResult[[]R]{}
	r.init(p)
	m, err := startMap(ctx, p, f, items, opts)
	if err != nil {
		r.resolve(nil, err)
		return r
	}
	p.startCallback(func() {
		v, err := m.wait()
		r.resolve(v, err)
	})
	return r
}
