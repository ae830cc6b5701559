package mp_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hangGuard is the context of a Map that would wait for ever if the
// behaviour under test broke: it turns a hang into a failed assertion. It
// bounds nothing that the tests measure.
func hangGuard(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestMapFastFailureNotBehindSlowItem is issue 13's item 7: an item that
// fails at once, right after a slow one, stops the Map while the slow item
// still runs, instead of waiting behind it in its chunk.
func TestMapFastFailureNotBehindSlowItem(t *testing.T) {
	boom := errors.New("boom")
	release := make(chan struct{}) // closed only once Map has returned
	slowStarted := make(chan struct{})
	var slowCause atomic.Value
	task := func(ctx context.Context, x int) (int, error) {
		switch x {
		case 0:
			close(slowStarted)
			select {
			case <-release:
				return 0, nil
			case <-ctx.Done():
				slowCause.Store(context.Cause(ctx))
				return 0, ctx.Err()
			}
		case 1:
			// Fail at once, but only once the slow item runs, so that the
			// failure is known to happen while it is blocked.
			<-slowStarted
			return 0, boom
		}
		return x, nil
	}
	p := mp.NewPool(4)
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	got, err := mp.Map(hangGuard(t), p, task, items)
	require.ErrorIs(t, err, boom)
	assert.Nil(t, got)
	// The slow item was still blocked: only the cancellation by the
	// failure let it return, and Map waited for it.
	assert.Equal(t, boom, slowCause.Load())
	close(release)
	closeJoin(t, p)
}

// TestMapSlowItemHoldsBackNoOther: item 0 returns only once every other
// item has run, which the other worker must do meanwhile.
func TestMapSlowItemHoldsBackNoOther(t *testing.T) {
	for _, n := range []int{2, 3, 100, 10_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			othersDone := make(chan struct{})
			var others atomic.Int64
			task := func(ctx context.Context, x int) (int, error) {
				if x == 0 {
					select {
					case <-othersDone:
					case <-ctx.Done():
						return 0, context.Cause(ctx)
					}
				} else if others.Add(1) == int64(n-1) {
					close(othersDone)
				}
				return x * x, nil
			}
			p := mp.NewPool(2)
			defer closeJoin(t, p)
			items := make([]int, n)
			for i := range items {
				items[i] = i
			}
			got, err := mp.Map(hangGuard(t), p, task, items)
			require.NoError(t, err)
			require.Len(t, got, n)
			for i, v := range got {
				require.Equal(t, i*i, v, "item %d", i)
			}
		})
	}
}

// TestMapOrderSizesAndChunks checks the results against the items for
// many sizes, ChunkSize values and worker counts, with items of uneven
// cost so that the workers interleave their batches.
func TestMapOrderSizesAndChunks(t *testing.T) {
	task := func(_ context.Context, x int) (int, error) {
		if x%97 == 0 {
			runtime.Gosched()
		}
		return 3*x + 1, nil
	}
	for _, workers := range []int{1, 3, 8} {
		p := mp.NewPool(workers)
		for _, n := range []int{1, 2, 3, 7, 8, 9, 64, 1000, 100_003} {
			items := make([]int, n)
			for i := range items {
				items[i] = i
			}
			for _, chunk := range []int{0, 1, 2, 3, 64, 5000, 200_000} {
				t.Run(fmt.Sprintf("workers=%d/n=%d/chunk=%d", workers, n, chunk), func(t *testing.T) {
					var opts []mp.MapOption
					if chunk > 0 {
						opts = append(opts, mp.ChunkSize(chunk))
					}
					got, err := mp.Map(t.Context(), p, task, items, opts...)
					require.NoError(t, err)
					require.Len(t, got, n)
					for i, v := range got {
						if v != 3*i+1 {
							require.Equal(t, 3*i+1, v, "item %d", i)
						}
					}
				})
			}
		}
		closeJoin(t, p)
	}
}

// TestMapTerminateAfterReturn: the share of a Map that reaches a worker,
// or is failed by Terminate, after the Map has returned changes nothing.
func TestMapTerminateAfterReturn(t *testing.T) {
	p := mp.NewPool(3)
	busy := make(chan struct{})
	require.NoError(t, p.Go(func(ctx context.Context) error {
		close(busy)
		<-ctx.Done() // until Terminate
		return nil
	}))
	<-busy
	items := make([]int, 1000)
	for i := range items {
		items[i] = i
	}
	got, err := mp.Map(hangGuard(t), p, square, items)
	require.NoError(t, err)
	p.Terminate()
	require.NoError(t, p.Join(t.Context()))
	require.Len(t, got, len(items))
	for i, v := range got {
		require.Equal(t, i*i, v)
	}
}

// TestMapCtxDoneWhileQueued: a Map whose work has not reached a worker
// yet fails as soon as its ctx is done.
func TestMapCtxDoneWhileQueued(t *testing.T) {
	p := mp.NewPool(1)
	release, busy := make(chan struct{}), make(chan struct{})
	require.NoError(t, p.Go(func(context.Context) error {
		close(busy)
		<-release
		return nil
	}))
	<-busy
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("stop")
	var ran atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, err := mp.Map(ctx, p, func(_ context.Context, x int) (int, error) {
			ran.Add(1)
			return x, nil
		}, make([]int, 10))
		done <- err
	}()
	require.Eventually(t, func() bool { return p.Stats().Queued == 1 }, time.Minute, time.Millisecond)
	cancel(stop)
	select {
	case err := <-done:
		require.ErrorIs(t, err, stop)
	case <-time.After(time.Minute): // a hang guard only
		t.Fatal("Map did not return after its ctx was cancelled")
	}
	close(release)
	closeJoin(t, p)
	assert.Zero(t, ran.Load(), "no item runs after Map has failed")
}

// TestMapNestedInTask: a task may Map on its own pool while another worker
// is free.
func TestMapNestedInTask(t *testing.T) {
	p := mp.NewPool(2)
	defer closeJoin(t, p)
	got, err := mp.Apply(hangGuard(t), p, func(ctx context.Context, n int) (int, error) {
		out, err := mp.Map(ctx, p, square, make([]int, n))
		return len(out), err
	}, 500)
	require.NoError(t, err)
	assert.Equal(t, 500, got)
}

// TestMapPanicInLaterBatch: a panic after the batches have grown still
// becomes the Map's error, and the pool serves on.
func TestMapPanicInLaterBatch(t *testing.T) {
	p := mp.NewPool(2)
	defer closeJoin(t, p)
	items := make([]int, 100_000)
	for i := range items {
		items[i] = i
	}
	_, err := mp.Map(t.Context(), p, func(_ context.Context, x int) (int, error) {
		if x == 77_777 {
			panic("late")
		}
		return x, nil
	}, items)
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "late", pe.Value)
	got, err := mp.Map(t.Context(), p, square, items[:10])
	require.NoError(t, err)
	assert.Equal(t, 81, got[9])
}
