//go:build unix

package mp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpgo/mp"
)

// The tests below cover Apply on a process pool with an idle worker,
// which the caller runs the task on itself (writing the request and
// reading the reply on its own goroutine) and which hands everything out
// of the plain case to the worker's goroutine.

// warmIdle starts the one worker of p with a first call and waits until
// it is idle, so that the next Apply runs on its caller's goroutine. It
// returns the first call's pid and how many tasks callers ran so far.
func warmIdle(t *testing.T, p *mp.Pool) (pid int, runs int64) {
	t.Helper()
	pid, err := mp.Apply(t.Context(), p, pidOf, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return mp.IdleWorkers(p) == 1 }, 10*time.Second, time.Millisecond)
	return pid, mp.CallerRuns(p)
}

// ranByCaller requires that the caller ran one task more than runs.
func ranByCaller(t *testing.T, p *mp.Pool, runs int64) {
	t.Helper()
	require.Equal(t, runs+1, mp.CallerRuns(p), "the caller did not run the task itself")
}

// TestProcessPoolApplyManyCallers has callers of Apply and ApplyAsync
// race for two workers: every task runs once, with its own result, and
// the pool counts each.
func TestProcessPoolApplyManyCallers(t *testing.T) {
	p := newProcessPool(t, 2)
	const callers, calls = 6, 40
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range calls {
				x := c*1000 + i
				var got int
				var err error
				if i%3 == 2 {
					got, err = mp.ApplyAsync(t.Context(), p, square, x).Get(t.Context())
				} else {
					got, err = mp.Apply(t.Context(), p, square, x)
				}
				if !assert.NoError(t, err) || !assert.Equal(t, x*x, got) {
					return
				}
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	assert.Equal(t, callers*calls, st.Completed)
	assert.Zero(t, st.Failed)
	assert.Positive(t, mp.CallerRuns(p), "no caller ran its task itself")
	joinClean(t, p)
}

// TestProcessPoolApplyCancelledWhileRunning cancels an Apply whose task
// runs on an idle worker the caller took: Apply returns the context's
// cause, the task sees its context end, and the worker serves on.
func TestProcessPoolApplyCancelledWhileRunning(t *testing.T) {
	p := newProcessPool(t, 1)
	_, runs := warmIdle(t, p)
	ctx, cancel := context.WithTimeoutCause(t.Context(), 30*time.Millisecond, errors.ErrUnsupported)
	defer cancel()
	_, err := mp.Apply(ctx, p, blockUntilDone, 0)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	ranByCaller(t, p, runs)
	got, err := mp.Apply(t.Context(), p, square, 9)
	require.NoError(t, err)
	assert.Equal(t, 81, got)
	joinClean(t, p)
}

// TestProcessPoolApplyWorkerDies kills the worker in the middle of a task
// the caller runs itself: Apply reports the worker's exit, and the next
// call gets a new worker.
func TestProcessPoolApplyWorkerDies(t *testing.T) {
	p := newProcessPool(t, 1)
	pid, runs := warmIdle(t, p)
	_, err := mp.Apply(hangGuard(t), p, exitMidTask, 3)
	ranByCaller(t, p, runs)
	var exit *mp.ExitError
	require.ErrorAs(t, err, &exit)
	next, err := mp.Apply(t.Context(), p, pidOf, 0)
	require.NoError(t, err)
	assert.NotEqual(t, pid, next)
	assert.Equal(t, 1, p.Stats().Failed)
}

// TestProcessPoolApplyFreshChildEachTime runs Apply on a pool whose
// workers retire after each task: the caller leaves the retiring to the
// worker's goroutine, and every task runs in a process of its own.
func TestProcessPoolApplyFreshChildEachTime(t *testing.T) {
	p := newProcessPool(t, 1, mp.MaxTasksPerChild(1))
	seen := map[int]bool{}
	for range 4 {
		pid, err := mp.Apply(hangGuard(t), p, pidOf, 0)
		require.NoError(t, err)
		require.False(t, seen[pid], "process %d ran two tasks", pid)
		seen[pid] = true
	}
	joinClean(t, p)
}

// TestProcessPoolJoinWaitsForApply closes and joins a pool while an Apply
// runs on a worker its caller took: Join returns only once that task has
// ended, and the task's result is the caller's.
func TestProcessPoolJoinWaitsForApply(t *testing.T) {
	p := newProcessPool(t, 1)
	_, runs := warmIdle(t, p)
	done := make(chan int, 1)
	go func() {
		v, err := mp.Apply(t.Context(), p, ignoreCtx, 100*time.Millisecond)
		assert.NoError(t, err)
		done <- v
	}()
	// Let the caller take the worker before the pool closes.
	require.Eventually(t, func() bool { return p.Stats().Running == 1 }, 10*time.Second, time.Millisecond)
	ranByCaller(t, p, runs)
	p.Close()
	require.NoError(t, p.Join(hangGuard(t)))
	select {
	case v := <-done:
		assert.Equal(t, 1, v)
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not return after Join")
	}
}

// TestProcessPoolTerminateDuringApply terminates the pool while an Apply
// runs on a worker its caller took: Apply fails with ErrTerminated.
func TestProcessPoolTerminateDuringApply(t *testing.T) {
	p := newProcessPool(t, 1)
	_, runs := warmIdle(t, p)
	errc := make(chan error, 1)
	go func() {
		_, err := mp.Apply(t.Context(), p, ignoreCtx, time.Hour)
		errc <- err
	}()
	require.Eventually(t, func() bool { return p.Stats().Running == 1 }, 10*time.Second, time.Millisecond)
	ranByCaller(t, p, runs)
	p.Terminate()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, mp.ErrTerminated)
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not end with Terminate")
	}
	require.NoError(t, p.Join(hangGuard(t)))
}
