package mp_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpgo/mp"
)

// TestQueueStress submits from many goroutines into small queues while
// workers park and wake, and closes the pool midway: every task that Go
// accepted runs exactly once, and a lost wake-up would hang Join.
func TestQueueStress(t *testing.T) {
	for _, tc := range []struct{ workers, queue, submitters int }{
		{1, 1, 4},
		{2, 1, 8},
		{2, 3, 3},
		{4, 2, 16},
		{8, 64, 4},
		{64, 5, 8},
	} {
		t.Run(fmt.Sprintf("workers=%d/queue=%d/submitters=%d", tc.workers, tc.queue, tc.submitters), func(t *testing.T) {
			for round := range 20 {
				p := mp.NewPool(tc.workers, mp.QueueSize(tc.queue))
				var ran, accepted, refused atomic.Int64
				task := func(context.Context) error { ran.Add(1); return nil }
				var wg sync.WaitGroup
				for s := range tc.submitters {
					wg.Go(func() {
						for i := range 500 {
							if s == 0 && i == 250 && round%2 == 1 {
								p.Close()
							}
							switch err := p.Go(task); {
							case err == nil:
								accepted.Add(1)
							case errors.Is(err, mp.ErrClosed):
								refused.Add(1)
							default:
								t.Errorf("Go: %v", err)
							}
						}
					})
				}
				wg.Wait()
				p.Close()
				require.NoError(t, p.Join(t.Context()))
				assert.Equal(t, int64(tc.submitters*500), accepted.Load()+refused.Load())
				assert.Equal(t, accepted.Load(), ran.Load(), "every accepted task ran once")
				assert.Equal(t, mp.PoolStats{Workers: tc.workers, Completed: int(ran.Load())}, p.Stats())
			}
		})
	}
}

// TestQueueStressTerminate terminates pools while submitters are blocked on
// a full queue, with and without a context that can be done: every
// submission ends, and every task either ran, failed with ErrTerminated or
// was refused with ErrClosed.
func TestQueueStressTerminate(t *testing.T) {
	for round := range 50 {
		p := mp.NewPool(2, mp.QueueSize(2))
		var ran atomic.Int64
		release := make(chan struct{})
		var results []*mp.AsyncResult[int]
		var mu sync.Mutex
		var wg sync.WaitGroup
		for s := range 6 {
			wg.Go(func() {
				for i := range 50 {
					if s%2 == 0 {
						_ = p.Go(func(context.Context) error { <-release; ran.Add(1); return nil })
						continue
					}
					r := mp.ApplyAsync(t.Context(), p, func(context.Context, int) (int, error) {
						<-release
						ran.Add(1)
						return i, nil
					}, i)
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				}
			})
		}
		if round%2 == 0 {
			close(release)
		}
		p.Terminate()
		if round%2 == 1 {
			close(release)
		}
		wg.Wait()
		for _, r := range results {
			if _, err := r.Get(t.Context()); err != nil && !errors.Is(err, mp.ErrClosed) {
				require.ErrorIs(t, err, mp.ErrTerminated)
			}
		}
		// Only Go's tasks are left to report.
		if err := p.Join(t.Context()); err != nil {
			require.ErrorIs(t, err, mp.ErrTerminated)
		}
		st := p.Stats()
		assert.Zero(t, st.Running)
		assert.Zero(t, st.Queued)
		assert.Equal(t, int(ran.Load()), st.Completed)
		assert.LessOrEqual(t, st.Completed+st.Failed, 300)
	}
}

// TestSubmitBlockedHonoursCtx cancels the context of a submission blocked
// on a full queue: it gives up with the context's cause and its task never
// runs.
func TestSubmitBlockedHonoursCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, release, _ := fullPool(t)
		ctx, cancel := context.WithCancelCause(t.Context())
		var ran atomic.Bool
		var r *mp.AsyncResult[int]
		done := make(chan struct{})
		go func() {
			defer close(done)
			r = mp.ApplyAsync(ctx, p, func(context.Context, int) (int, error) { ran.Store(true); return 1, nil }, 1)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("ApplyAsync returned while the queue was full")
		default:
		}
		stop := errors.New("stop")
		cancel(stop)
		<-done
		_, err := r.Get(t.Context())
		require.ErrorIs(t, err, stop)
		close(release)
		closeJoin(t, p)
		assert.False(t, ran.Load())
		assert.Equal(t, mp.PoolStats{Workers: 1, Completed: 2}, p.Stats())
	})
}

// TestIdleWorkersWake submits bursts separated by pauses in which every
// worker parks, from one goroutine and from many: each burst runs in full.
func TestIdleWorkersWake(t *testing.T) {
	for _, workers := range []int{1, 3, 100} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			p := mp.NewPool(workers, mp.QueueSize(4))
			defer closeJoin(t, p)
			for burst := range 200 {
				n := burst%7 + 1
				var wg sync.WaitGroup
				wg.Add(n)
				for range n {
					require.NoError(t, p.Go(func(context.Context) error { wg.Done(); return nil }))
				}
				wg.Wait()
				got, err := mp.Apply(t.Context(), p, square, burst)
				require.NoError(t, err)
				assert.Equal(t, burst*burst, got)
			}
		})
	}
}
