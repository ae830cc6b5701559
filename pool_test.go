package mp_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func square(_ context.Context, x int) (int, error) { return x * x, nil }

// closeJoin closes p and requires Join to report no error.
func closeJoin(t *testing.T, p *mp.Pool) {
	t.Helper()
	p.Close()
	require.NoError(t, p.Join(t.Context()))
}

func TestNewPoolWorkers(t *testing.T) {
	p := mp.NewPool(0)
	assert.Equal(t, runtime.GOMAXPROCS(0), p.Workers())
	assert.Equal(t, runtime.GOMAXPROCS(0), p.Stats().Workers)
	closeJoin(t, p)

	p = mp.NewPool(3)
	assert.Equal(t, 3, p.Workers())
	closeJoin(t, p)

	assert.PanicsWithValue(t, "mp: negative worker count", func() { mp.NewPool(-1) })
	assert.Panics(t, func() { mp.QueueSize(0) })
	assert.Panics(t, func() { mp.ChunkSize(0) })
}

func TestMapKeepsOrder(t *testing.T) {
	items := make([]int, 1000)
	for i := range items {
		items[i] = i
	}
	want := make([]int, len(items))
	for i, x := range items {
		want[i] = x * x
	}
	tests := []struct {
		name    string
		workers int
		items   []int
		opts    []mp.MapOption
	}{
		{"one worker", 1, items, nil},
		{"eight workers", 8, items, nil},
		{"chunk 1", 4, items, []mp.MapOption{mp.ChunkSize(1)}},
		{"chunk 7", 4, items, []mp.MapOption{mp.ChunkSize(7)}},
		{"chunk larger than input", 4, items, []mp.MapOption{mp.ChunkSize(5000)}},
		{"fewer items than workers", 16, items[:3], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mp.NewPool(tt.workers)
			defer closeJoin(t, p)
			got, err := mp.Map(t.Context(), p, square, tt.items, tt.opts...)
			require.NoError(t, err)
			assert.Equal(t, want[:len(tt.items)], got)
		})
	}
}

func TestMapEmpty(t *testing.T) {
	p := mp.NewPool(2)
	defer closeJoin(t, p)
	got, err := mp.Map(t.Context(), p, square, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestMapTakesOneUnitPerWorker(t *testing.T) {
	p := mp.NewPool(2)
	items := make([]int, 10000)
	_, err := mp.Map(t.Context(), p, square, items)
	require.NoError(t, err)
	// One unit per item of at least ChunkSize: here a single one.
	_, err = mp.Map(t.Context(), p, square, items[:10], mp.ChunkSize(10))
	require.NoError(t, err)
	closeJoin(t, p)
	// One puller per worker, then one: 3 units, not 10010.
	assert.Equal(t, 3, p.Stats().Completed)
}

// TestAtMostWorkersRun checks every submission path against the bound.
func TestAtMostWorkersRun(t *testing.T) {
	const workers = 3
	var running, peak atomic.Int64
	task := func(_ context.Context, x int) (int, error) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		runtime.Gosched()
		running.Add(-1)
		return x, nil
	}
	items := make([]int, 300)
	p := mp.NewPool(workers)
	_, err := mp.Map(t.Context(), p, task, items, mp.ChunkSize(1))
	require.NoError(t, err)
	for range mp.MapSeqUnordered(t.Context(), p, task, slices.Values(items)) {
	}
	var results []*mp.AsyncResult[int]
	for i := range 100 {
		results = append(results, mp.ApplyAsync(t.Context(), p, task, i))
	}
	for _, r := range results {
		_, err := r.Get(t.Context())
		require.NoError(t, err)
	}
	closeJoin(t, p)
	assert.LessOrEqual(t, peak.Load(), int64(workers))
	assert.Positive(t, peak.Load())
}

func TestMapFirstErrorWinsAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		var stopped atomic.Int64
		var ran atomic.Int64
		task := func(ctx context.Context, x int) (int, error) {
			ran.Add(1)
			if x == 0 {
				time.Sleep(time.Second)
				return 0, boom
			}
			if x < 4 {
				// Siblings run until Map's failure cancels them.
				<-ctx.Done()
				assert.ErrorIs(t, context.Cause(ctx), boom)
				time.Sleep(time.Second) // still running when boom wins
				stopped.Add(1)
				return 0, ctx.Err()
			}
			return x, nil
		}
		p := mp.NewPool(4)
		items := make([]int, 100)
		for i := range items {
			items[i] = i
		}
		got, err := mp.Map(t.Context(), p, task, items, mp.ChunkSize(1))
		require.ErrorIs(t, err, boom)
		assert.Nil(t, got)
		// Map returned only after the three siblings had returned.
		assert.EqualValues(t, 3, stopped.Load())
		// Items queued behind the failure were skipped.
		assert.EqualValues(t, 4, ran.Load())
		closeJoin(t, p)
	})
}

func TestMapPanicBecomesPanicError(t *testing.T) {
	p := mp.NewPool(1)
	defer closeJoin(t, p)
	_, err := mp.Map(t.Context(), p, func(_ context.Context, x int) (int, error) {
		if x == 5 {
			panic("five")
		}
		return x, nil
	}, []int{1, 2, 3, 4, 5, 6})
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "five", pe.Value)
	assert.Contains(t, string(pe.Stack), "pool_test.go")
	// The single worker lives on.
	got, err := mp.Apply(t.Context(), p, square, 3)
	require.NoError(t, err)
	assert.Equal(t, 9, got)
}

func TestMapCancelledCtx(t *testing.T) {
	p := mp.NewPool(2)
	defer closeJoin(t, p)
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("stop")
	cancel(stop)
	_, err := mp.Map(ctx, p, square, []int{1, 2, 3})
	require.ErrorIs(t, err, stop)
}

func TestApplyPanicWorkerLivesOn(t *testing.T) {
	p := mp.NewPool(1)
	defer closeJoin(t, p)
	_, err := mp.Apply(t.Context(), p, func(context.Context, int) (int, error) { panic(errors.ErrUnsupported) }, 0)
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	got, err := mp.Apply(context.Background(), p, square, 4)
	require.NoError(t, err)
	assert.Equal(t, 16, got)
}

func TestSubmitAfterClose(t *testing.T) {
	for _, stop := range []string{"Close", "Terminate"} {
		t.Run(stop, func(t *testing.T) {
			p := mp.NewPool(2)
			if stop == "Close" {
				p.Close()
			} else {
				p.Terminate()
			}
			require.ErrorIs(t, p.Go(func(context.Context) error { return nil }), mp.ErrClosed)
			_, err := mp.Apply(t.Context(), p, square, 1)
			require.ErrorIs(t, err, mp.ErrClosed)
			r := mp.ApplyAsync(context.Background(), p, square, 1)
			assert.True(t, r.Ready())
			_, err = r.Get(t.Context())
			require.ErrorIs(t, err, mp.ErrClosed)
			_, err = mp.Map(t.Context(), p, square, []int{1, 2})
			require.ErrorIs(t, err, mp.ErrClosed)
			var errs []error
			for _, err := range mp.MapSeq(t.Context(), p, square, slices.Values([]int{1, 2, 3})) {
				errs = append(errs, err)
			}
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], mp.ErrClosed)
			require.NoError(t, p.Join(t.Context()))
		})
	}
}

func TestJoinBeforeClosePanics(t *testing.T) {
	p := mp.NewPool(1)
	assert.PanicsWithValue(t, "mp: Pool.Join called before Close or Terminate", func() {
		_ = p.Join(t.Context())
	})
	closeJoin(t, p)
}

func TestJoinCtxBoundsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(1)
		require.NoError(t, p.Go(func(context.Context) error {
			time.Sleep(time.Hour)
			return nil
		}))
		p.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		require.ErrorIs(t, p.Join(ctx), context.DeadlineExceeded)
		require.NoError(t, p.Join(t.Context()))
	})
}

func TestTerminate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(2)
		started := make(chan struct{}, 2)
		var causes []error
		var mu sync.Mutex
		running := func(ctx context.Context, x int) (int, error) {
			started <- struct{}{}
			<-ctx.Done()
			mu.Lock()
			causes = append(causes, context.Cause(ctx))
			mu.Unlock()
			return x, nil // its own return value is kept
		}
		r1 := mp.ApplyAsync(context.Background(), p, running, 1)
		r2 := mp.ApplyAsync(t.Context(), p, running, 2)
		<-started
		<-started
		var queued []*mp.AsyncResult[int]
		for i := range 10 {
			queued = append(queued, mp.ApplyAsync(t.Context(), p, square, i))
		}
		p.Terminate()
		p.Terminate() // a no-op
		for _, r := range queued {
			_, err := r.Get(t.Context())
			require.ErrorIs(t, err, mp.ErrTerminated)
		}
		v, err := r1.Get(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		v, err = r2.Get(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 2, v)
		require.NoError(t, p.Join(t.Context()))
		assert.Equal(t, []error{mp.ErrTerminated, mp.ErrTerminated}, causes)
		st := p.Stats()
		assert.Equal(t, 10, st.Failed)
		assert.Equal(t, 2, st.Completed)
	})
}

func TestTerminateStopsMap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(2)
		var got error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, got = mp.Map(context.Background(), p, func(ctx context.Context, x int) (int, error) {
				<-ctx.Done()
				return 0, context.Cause(ctx)
			}, make([]int, 100), mp.ChunkSize(1))
		}()
		synctest.Wait()
		p.Terminate()
		<-done
		require.ErrorIs(t, got, mp.ErrTerminated)
		require.NoError(t, p.Join(t.Context()))
	})
}

func TestJoinReportsUncollectedOnce(t *testing.T) {
	p := mp.NewPool(2)
	e1, e2, e3 := errors.New("e1"), errors.New("e2"), errors.New("e3")
	fail := func(_ context.Context, err error) (int, error) { return 0, err }
	collected := mp.ApplyAsync(t.Context(), p, fail, e1)
	mp.ApplyAsync(t.Context(), p, fail, e2) // nobody calls Get
	require.NoError(t, p.Go(func(context.Context) error { return e3 }))
	require.NoError(t, p.Go(func(context.Context) error { panic("go panic") }))
	ok := mp.ApplyAsync(t.Context(), p, square, 2)
	_, err := collected.Get(t.Context())
	require.ErrorIs(t, err, e1)
	p.Close()
	err = p.Join(t.Context())
	require.ErrorIs(t, err, e2)
	require.ErrorIs(t, err, e3)
	require.NotErrorIs(t, err, e1)
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "go panic", pe.Value)
	require.NoError(t, p.Join(t.Context()), "a second Join repeats nothing")
	v, err := ok.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 4, v)
}

func TestAsyncResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(1)
		release := make(chan struct{})
		r := mp.ApplyAsync(t.Context(), p, func(_ context.Context, x int) (int, error) {
			<-release
			return x + 1, nil
		}, 41)
		assert.False(t, r.Ready())
		select {
		case <-r.Done():
			t.Fatal("Done closed before the task ended")
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := r.Get(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		close(release)
		<-r.Done()
		assert.True(t, r.Ready())
		v, err := r.Get(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 42, v)
		closeJoin(t, p)
	})
}

func TestApplyAsyncSkipsWhenCtxDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(1)
		block := make(chan struct{})
		require.NoError(t, p.Go(func(context.Context) error { <-block; return nil }))
		ctx, cancel := context.WithCancel(t.Context())
		var ran atomic.Bool
		r := mp.ApplyAsync(ctx, p, func(context.Context, int) (int, error) { ran.Store(true); return 0, nil }, 0)
		cancel()
		close(block)
		_, err := r.Get(t.Context())
		require.ErrorIs(t, err, context.Canceled)
		assert.False(t, ran.Load())
		closeJoin(t, p)
	})
}

// TestApplyAsyncTaskCtxIsCancelled checks that a running task sees its
// caller's cancellation, with its cause, and Terminate, with cause
// ErrTerminated, whether its worker starts afresh or has just run a task
// with the same or another context.
func TestApplyAsyncTaskCtxIsCancelled(t *testing.T) {
	boom := errors.New("boom")
	for _, before := range []string{"nothing", "same ctx", "other ctx"} {
		for _, stop := range []string{"cancel", "terminate"} {
			t.Run(before+"/"+stop, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					p := mp.NewPool(1) // one worker: every task runs on it
					ctx, cancel := context.WithCancelCause(t.Context())
					defer cancel(nil)
					switch before {
					case "same ctx":
						_, err := mp.Apply(ctx, p, square, 2)
						require.NoError(t, err)
					case "other ctx":
						other, cancelOther := context.WithCancel(t.Context())
						_, err := mp.Apply(other, p, square, 2)
						require.NoError(t, err)
						cancelOther()
					}
					started := make(chan struct{})
					r := mp.ApplyAsync(ctx, p, func(ctx context.Context, _ int) (int, error) {
						close(started)
						<-ctx.Done()
						return 0, context.Cause(ctx)
					}, 0)
					<-started
					want := boom
					if stop == "cancel" {
						cancel(boom)
						p.Close()
					} else {
						want = mp.ErrTerminated
						p.Terminate()
					}
					_, err := r.Get(t.Context())
					require.ErrorIs(t, err, want)
					require.NoError(t, p.Join(t.Context()))
				})
			})
		}
	}
}

// TestApplyAsyncTaskCtxFollowsCaller checks that a worker running tasks of
// alternating contexts gives each task its own caller's values and
// cancellation.
func TestApplyAsyncTaskCtxFollowsCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		p := mp.NewPool(1)
		a, cancelA := context.WithCancel(context.WithValue(t.Context(), key{}, "a"))
		b := context.WithValue(t.Context(), key{}, "b") // b is done with t's context
		value := func(ctx context.Context, _ int) (string, error) {
			s, _ := ctx.Value(key{}).(string)
			return s, nil
		}
		for _, c := range []struct {
			ctx  context.Context
			want string
		}{{a, "a"}, {b, "b"}, {a, "a"}, {a, "a"}, {b, "b"}} {
			got, err := mp.Apply(c.ctx, p, value, 0)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		}
		// a's cancellation does not reach a task of b's, though a's task
		// ran on the same worker before it.
		_, err := mp.Apply(a, p, value, 0)
		require.NoError(t, err)
		release := make(chan struct{})
		r := mp.ApplyAsync(b, p, func(ctx context.Context, _ int) (bool, error) {
			<-release
			return ctx.Err() != nil, nil
		}, 0)
		cancelA()
		close(release)
		done, err := r.Get(t.Context())
		require.NoError(t, err)
		assert.False(t, done)
		// A task submitted with a done context is skipped, and the worker
		// goes on with the next context.
		_, err = mp.Apply(a, p, value, 0)
		require.ErrorIs(t, err, context.Canceled)
		got, err := mp.Apply(b, p, value, 0)
		require.NoError(t, err)
		assert.Equal(t, "b", got)
		closeJoin(t, p)
	})
}

// tagCtx is a context that == cannot compare, since it holds a slice.
type tagCtx struct {
	context.Context
	tags []string
}

func TestApplyAsyncUncomparableCtx(t *testing.T) {
	p := mp.NewPool(1)
	ctx := tagCtx{Context: t.Context(), tags: []string{"x"}}
	for i := range 3 {
		got, err := mp.Apply(ctx, p, square, i)
		require.NoError(t, err)
		assert.Equal(t, i*i, got)
	}
	closeJoin(t, p)
}

func TestThen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(1)
		boom := errors.New("boom")
		var got []string
		var mu sync.Mutex
		record := func(v int, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprint(v, err))
		}
		// A callback that blocks for an hour does not stall the only worker.
		mp.ApplyAsync(t.Context(), p, square, 3).Then(func(v int, err error) {
			time.Sleep(time.Hour)
			record(v, err)
		})
		mp.ApplyAsync(t.Context(), p, func(context.Context, int) (int, error) { return 0, boom }, 0).Then(record)
		mp.ApplyAsync(t.Context(), p, square, 1).Then(func(int, error) { panic("bad callback") })
		v, err := mp.Apply(t.Context(), p, square, 5)
		require.NoError(t, err)
		assert.Equal(t, 25, v)
		// Then on a result that has already ended runs too.
		r := mp.ApplyAsync(t.Context(), p, square, 4)
		<-r.Done()
		r.Then(record)
		assert.Panics(t, func() { r.Then(record) })
		p.Close()
		err = p.Join(t.Context()) // waits for the hour-long callback
		var pe *mp.PanicError
		require.ErrorAs(t, err, &pe, "the panicking callback is reported")
		assert.Equal(t, "bad callback", pe.Value)
		require.NotErrorIs(t, err, boom, "the callback collected boom")
		assert.ElementsMatch(t, []string{"9 <nil>", "0 boom", "16 <nil>"}, got)
	})
}

func TestMapSeqOrderAndErrors(t *testing.T) {
	p := mp.NewPool(4)
	defer closeJoin(t, p)
	odd := errors.New("odd")
	task := func(_ context.Context, x int) (int, error) {
		if x%2 == 1 {
			return 0, odd
		}
		return x * 10, nil
	}
	var vals []int
	var nerr int
	for v, err := range mp.MapSeq(t.Context(), p, task, seqN(100)) {
		if err != nil {
			require.ErrorIs(t, err, odd)
			nerr++
			continue
		}
		vals = append(vals, v)
	}
	assert.Equal(t, 50, nerr, "MapSeq goes on after errors")
	require.Len(t, vals, 50)
	for i, v := range vals {
		assert.Equal(t, i*20, v)
	}
}

func TestMapSeqUnorderedAll(t *testing.T) {
	p := mp.NewPool(3)
	defer closeJoin(t, p)
	var got []int
	for v, err := range mp.MapSeqUnordered(t.Context(), p, square, seqN(200)) {
		require.NoError(t, err)
		got = append(got, v)
	}
	slices.Sort(got)
	for i := range 200 {
		assert.Equal(t, i*i, got[i])
	}
}

func TestMapSeqBoundedLookAhead(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprint("ordered=", ordered), func(t *testing.T) {
			const workers = 2
			p := mp.NewPool(workers)
			defer closeJoin(t, p)
			var read int
			items := func(yield func(int) bool) {
				for i := 0; ; i++ { // infinite: reading it all would hang
					read++
					if !yield(i) {
						return
					}
				}
			}
			seq := mp.MapSeq(t.Context(), p, square, items)
			if !ordered {
				seq = mp.MapSeqUnordered(t.Context(), p, square, items)
			}
			yielded := 0
			for _, err := range seq {
				require.NoError(t, err)
				yielded++
				assert.LessOrEqual(t, read-yielded, 2*workers+1)
				if yielded == 50 {
					break
				}
			}
			assert.Equal(t, 50, yielded)
		})
	}
}

func TestMapSeqBreakCancelsOutstanding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(4)
		var cancelled atomic.Int64
		task := func(ctx context.Context, x int) (int, error) {
			if x == 0 {
				return 0, nil
			}
			select {
			case <-ctx.Done():
				cancelled.Add(1)
				return 0, ctx.Err()
			case <-time.After(time.Hour):
				return x, nil
			}
		}
		for v, err := range mp.MapSeq(t.Context(), p, task, seqN(1000)) {
			require.NoError(t, err)
			assert.Equal(t, 0, v)
			synctest.Wait() // every worker is now inside a task
			assert.Equal(t, 4, p.Stats().Running)
			break
		}
		// Every task that was running saw its ctx cancelled and has
		// returned when the loop ends: no synctest.Wait needed.
		assert.EqualValues(t, 4, cancelled.Load())
		closeJoin(t, p)
	})
}

func TestGoAndStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(2)
		release := make(chan struct{})
		for range 5 {
			require.NoError(t, p.Go(func(context.Context) error { <-release; return nil }))
		}
		require.NoError(t, p.Go(func(context.Context) error { return errors.New("x") }))
		synctest.Wait()
		assert.Equal(t, mp.PoolStats{Workers: 2, Running: 2, Queued: 4}, p.Stats())
		close(release)
		p.Close()
		err := p.Join(t.Context())
		require.EqualError(t, err, "x")
		assert.Equal(t, mp.PoolStats{Workers: 2, Completed: 5, Failed: 1}, p.Stats())
	})
}

// fullPool returns a pool of one worker whose queue of one is full: a
// task waiting for release runs, another is queued. It must be called in
// a synctest bubble.
func fullPool(t *testing.T) (p *mp.Pool, release chan struct{}, wait func(context.Context) error) {
	t.Helper()
	p = mp.NewPool(1, mp.QueueSize(1))
	release = make(chan struct{})
	wait = func(context.Context) error { <-release; return nil }
	require.NoError(t, p.Go(wait)) // running
	synctest.Wait()
	require.NoError(t, p.Go(wait)) // queued
	return p, release, wait
}

func TestGoBlocksWhenQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, release, wait := fullPool(t)
		var third atomic.Bool
		go func() {
			assert.NoError(t, p.Go(wait))
			third.Store(true)
		}()
		synctest.Wait()
		assert.False(t, third.Load(), "Go blocks while the queue is full")
		p.Terminate()
		synctest.Wait()
		assert.True(t, third.Load(), "Terminate unblocks Go")
		require.ErrorIs(t, p.Go(wait), mp.ErrClosed)
		close(release)
		err := p.Join(t.Context())
		require.ErrorIs(t, err, mp.ErrTerminated, "the queued Go tasks were terminated")
		assert.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 2)
		assert.Equal(t, mp.PoolStats{Workers: 1, Completed: 1, Failed: 2}, p.Stats())
	})
}

func seqN(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// TestCollectedErrorsAreNotKept checks that a long-lived pool whose callers
// collect every error does not keep the failed results for Join.
func TestCollectedErrorsAreNotKept(t *testing.T) {
	p := mp.NewPool(2)
	boom := errors.New("boom")
	fail := func(context.Context, int) (int, error) { return 0, boom }
	for i := range 1000 {
		_, err := mp.Apply(t.Context(), p, fail, i)
		require.ErrorIs(t, err, boom)
	}
	assert.Less(t, mp.OwedLen(p), 200)
	closeJoin(t, p)
}

// TestCloseDoesNotWaitForBlockedSubmitters closes a pool from inside its
// only worker while a submission waits for room: Close must not wait for
// it, and the submission must still run.
func TestCloseDoesNotWaitForBlockedSubmitters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mp.NewPool(1, mp.QueueSize(1))
		var ran atomic.Int64
		release := make(chan struct{})
		count := func(context.Context) error { ran.Add(1); return nil }
		require.NoError(t, p.Go(func(context.Context) error {
			<-release
			p.Close() // from inside the pool's only worker
			return count(nil)
		}))
		synctest.Wait()
		require.NoError(t, p.Go(count)) // fills the queue
		go func() { assert.NoError(t, p.Go(count)) }()
		synctest.Wait() // the third submission now waits for room
		close(release)
		synctest.Wait() // the worker has closed the pool
		require.NoError(t, p.Join(t.Context()))
		assert.EqualValues(t, 3, ran.Load())
		require.ErrorIs(t, p.Go(count), mp.ErrClosed)
	})
}
