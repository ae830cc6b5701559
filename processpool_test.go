//go:build unix

package mp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tasks the process-pool tests run in workers.

type pair struct{ X, Y int }

func addPair(_ context.Context, p pair) (int, error) { return p.X + p.Y, nil }

// failOdd fails on odd numbers and panics on 13.
func failOdd(_ context.Context, x int) (int, error) {
	if x == 13 {
		panic("thirteen")
	}
	if x%2 == 1 {
		return 0, fmt.Errorf("odd %d", x)
	}
	return x, nil
}

// initialised is set by initWorker in each worker, before its first task.
var initialised string

func initWorker(_ context.Context, tag string) (struct{}, error) {
	initialised = tag
	return struct{}{}, nil
}

func failInit(_ context.Context, _ string) (struct{}, error) {
	return struct{}{}, errors.New("no database")
}

// pidAndInit returns the worker's pid and what its initializer set.
func pidAndInit(_ context.Context, _ int) (string, error) {
	return strconv.Itoa(os.Getpid()) + " " + initialised, nil
}

// pidOf returns the worker's pid.
func pidOf(_ context.Context, _ int) (int, error) { return os.Getpid(), nil }

// blockUntilDone blocks until its ctx is done.
func blockUntilDone(ctx context.Context, _ int) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// ignoreCtx sleeps for d whatever its context says.
func ignoreCtx(_ context.Context, d time.Duration) (int, error) {
	time.Sleep(d)
	return 1, nil
}

// dieOn exits the worker with status 7 on x == 0 unless the marker file
// exists, which it creates: it dies the first time only.
func dieOnce(_ context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			return 0, err
		}
		os.Exit(7)
	}
	return 1, nil
}

func init() {
	mp.Register(addPair)
	mp.Register(failOdd)
	mp.Register(initWorker)
	mp.Register(failInit)
	mp.Register(pidAndInit)
	mp.Register(pidOf)
	mp.Register(blockUntilDone)
	mp.Register(ignoreCtx)
	mp.Register(dieOnce)
	mp.Register(filled)
}

// filled returns n bytes, each the low byte of n.
func filled(_ context.Context, n int) ([]byte, error) {
	return bytes.Repeat([]byte{byte(n)}, n), nil
}

// TestProcessPoolRepliesOfEverySize checks results resolved as their
// replies arrive (small ones) and by the worker (large ones), mixed in
// one pipeline, and errors and panics among them: each result is its own
// task's, in every order of arrival.
func TestProcessPoolRepliesOfEverySize(t *testing.T) {
	ctx := t.Context()
	p := mp.NewProcessPool(2)
	defer func() {
		p.Close()
		require.NoError(t, p.Join(ctx))
	}()
	sizes := []int{0, 1, 100, 16 << 10, 16<<10 + 1, 40 << 10, 3}
	var rs []*mp.AsyncResult[[]byte]
	for i := range 210 {
		rs = append(rs, mp.ApplyAsync(ctx, p, filled, sizes[i%len(sizes)]))
	}
	fails := []*mp.AsyncResult[int]{mp.ApplyAsync(ctx, p, failOdd, 3), mp.ApplyAsync(ctx, p, failOdd, 13)}
	for i, r := range rs {
		v, err := r.Get(ctx)
		require.NoError(t, err)
		n := sizes[i%len(sizes)]
		require.Len(t, v, n, "result %d", i)
		if n > 0 {
			require.Equal(t, byte(n), v[0])
			require.Equal(t, byte(n), v[n-1])
		}
	}
	_, err := fails[0].Get(ctx)
	require.ErrorContains(t, err, "odd 3")
	_, err = fails[1].Get(ctx)
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	for range 50 {
		v, err := mp.Apply(ctx, p, filled, 7)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{7}, 7), v)
	}
	// A task is counted before its result is delivered.
	st := p.Stats()
	assert.Equal(t, 260, st.Completed)
	assert.Equal(t, 2, st.Failed)
	assert.Zero(t, st.Running)
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// children returns the pids of this process's live child processes.
func children(t *testing.T) []int {
	t.Helper()
	// A spare being started is a child for a moment before it counts as
	// a spare.
	mp.SettleSpares()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
	}
	me := strconv.Itoa(os.Getpid())
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses:
		// state, ppid, ...
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == me {
			pids = append(pids, pid)
		}
	}
	// A spare waiting for a task is no child of the test's.
	spare := mp.SparePids()
	return slices.DeleteFunc(pids, func(pid int) bool { return slices.Contains(spare, pid) })
}

// newProcessPool returns a process pool that is terminated when the test
// ends, so that a failing test leaves no worker behind for the next.
func newProcessPool(t *testing.T, workers int, opts ...mp.ProcessOption) *mp.Pool {
	t.Helper()
	p := mp.NewProcessPool(workers, opts...)
	t.Cleanup(func() {
		p.Terminate()
		_ = p.Join(context.Background())
	})
	return p
}

// joinClean closes p, joins it, and checks that no worker is left.
func joinClean(t *testing.T, p *mp.Pool) {
	t.Helper()
	p.Close()
	require.NoError(t, p.Join(t.Context()))
	assert.Empty(t, mp.ProcessPoolPids(p))
	assert.Empty(t, children(t), "no child process remains after Join")
}

func ints(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestProcessPoolMatchesGoroutinePool(t *testing.T) {
	ctx := t.Context()
	pp := newProcessPool(t, 2)
	gp := mp.NewPool(2)
	defer joinClean(t, pp)
	defer closeJoin(t, gp)

	items := ints(1000)
	want, err := mp.Map(ctx, gp, square, items)
	require.NoError(t, err)
	for _, size := range []int{0, 1, 7, 1000, 5000} {
		t.Run(fmt.Sprintf("Map chunk %d", size), func(t *testing.T) {
			var opts []mp.MapOption
			if size > 0 {
				opts = append(opts, mp.ChunkSize(size))
			}
			got, err := mp.Map(ctx, pp, square, items, opts...)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	t.Run("Map empty", func(t *testing.T) {
		got, err := mp.Map(ctx, pp, square, nil)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("Map struct", func(t *testing.T) {
		pts := []pair{{1, 2}, {3, 4}, {5, 6}}
		got, err := mp.Map(ctx, pp, addPair, pts, mp.ChunkSize(2))
		require.NoError(t, err)
		assert.Equal(t, []int{3, 7, 11}, got)
	})
	t.Run("Apply", func(t *testing.T) {
		v, err := mp.Apply(ctx, pp, square, 12)
		require.NoError(t, err)
		assert.Equal(t, 144, v)
		v, err = mp.Apply(ctx, pp, addPair, pair{40, 2})
		require.NoError(t, err)
		assert.Equal(t, 42, v)
	})
	t.Run("ApplyAsync", func(t *testing.T) {
		rs := make([]*mp.AsyncResult[int], 500)
		for i := range rs {
			rs[i] = mp.ApplyAsync(ctx, pp, square, i)
		}
		for i, r := range rs {
			v, err := r.Get(ctx)
			require.NoError(t, err)
			assert.Equal(t, want[i], v)
		}
	})
	t.Run("MapSeq", func(t *testing.T) {
		var got []int
		for v, err := range mp.MapSeq(ctx, pp, square, slices.Values(items[:300])) {
			require.NoError(t, err)
			got = append(got, v)
		}
		assert.Equal(t, want[:300], got)
	})
	t.Run("MapSeqUnordered", func(t *testing.T) {
		var got []int
		for v, err := range mp.MapSeqUnordered(ctx, pp, square, slices.Values(items[:300])) {
			require.NoError(t, err)
			got = append(got, v)
		}
		slices.Sort(got)
		assert.Equal(t, want[:300], got)
	})
	t.Run("errors", func(t *testing.T) {
		_, err := mp.Map(ctx, pp, failOdd, []int{0, 2, 3, 4})
		require.EqualError(t, err, "odd 3")
		_, err = mp.Apply(ctx, pp, failOdd, 5)
		require.EqualError(t, err, "odd 5")
		var got []error
		for _, err := range mp.MapSeq(ctx, pp, failOdd, slices.Values([]int{1, 2})) {
			got = append(got, err)
		}
		require.Len(t, got, 2)
		assert.EqualError(t, got[0], "odd 1")
		assert.NoError(t, got[1])
	})
	t.Run("panic", func(t *testing.T) {
		_, err := mp.Apply(ctx, pp, failOdd, 13)
		var pe *mp.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "thirteen", pe.Value)
		assert.Contains(t, string(pe.Stack), "failOdd", "the stack is the child's")
		// The worker lives on.
		v, err := mp.Apply(ctx, pp, square, 3)
		require.NoError(t, err)
		assert.Equal(t, 9, v)
	})
	s := pp.Stats()
	assert.Equal(t, 2, s.Workers)
	assert.Positive(t, s.Completed)
	assert.Positive(t, s.Failed)
	assert.Zero(t, s.Running)
}

func TestProcessPoolNotRegistered(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 1)
	defer joinClean(t, p)
	local := func(_ context.Context, x int) (int, error) { return x, nil }

	_, err := mp.Map(ctx, p, local, []int{1})
	require.ErrorIs(t, err, mp.ErrNotRegistered)
	assert.Contains(t, err.Error(), "TestProcessPoolNotRegistered.func1")

	r := mp.ApplyAsync(ctx, p, local, 1)
	assert.True(t, r.Ready(), "resolved at once")
	_, err = r.Get(ctx)
	require.ErrorIs(t, err, mp.ErrNotRegistered)

	for _, err := range mp.MapSeq(ctx, p, local, slices.Values([]int{1, 2})) {
		require.ErrorIs(t, err, mp.ErrNotRegistered)
	}
	require.ErrorIs(t, p.Go(func(context.Context) error { return nil }), mp.ErrNotRegistered)

	r2 := mp.ApplyAsync(ctx, p, sendChan, make(chan int))
	assert.True(t, r2.Ready(), "an unencodable argument fails at once")
	_, err = r2.Get(ctx)
	require.Error(t, err)
}

func TestProcessPoolInitializer(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 2, mp.Initializer(initWorker, "ready"), mp.MaxTasksPerChild(3))
	defer joinClean(t, p)
	out, err := mp.Map(ctx, p, pidAndInit, ints(40), mp.ChunkSize(1))
	require.NoError(t, err)
	pids := map[string]bool{}
	for _, s := range out {
		pid, tag, _ := strings.Cut(s, " ")
		assert.Equal(t, "ready", tag, "the initializer ran before the task")
		pids[pid] = true
	}
	// 40 tasks, at most 3 per worker: at least 14 workers served them.
	assert.GreaterOrEqual(t, len(pids), 14, "workers were recycled")
}

func TestProcessPoolInitializerFails(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 2, mp.Initializer(failInit, ""))
	for range 3 {
		_, err := mp.Apply(ctx, p, square, 2)
		require.ErrorContains(t, err, "no database")
		require.ErrorContains(t, err, "initializer")
	}
	_, err := mp.Map(ctx, p, square, ints(10))
	require.ErrorContains(t, err, "no database")
	joinClean(t, p)

	local := func(_ context.Context, _ string) (struct{}, error) { return struct{}{}, nil }
	q := newProcessPool(t, 1, mp.Initializer(local, ""))
	defer joinClean(t, q)
	_, err = mp.Apply(ctx, q, square, 2)
	require.ErrorIs(t, err, mp.ErrNotRegistered)
}

func TestProcessPoolKilledWorker(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 2)
	defer joinClean(t, p)
	pids := mp.ProcessPoolPids(p)
	eventually(t, "two workers", func() bool { pids = mp.ProcessPoolPids(p); return len(pids) == 2 })

	// Each worker holds one blocked task; kill the first worker.
	r1 := mp.ApplyAsync(ctx, p, blockUntilDone, 1)
	r2 := mp.ApplyAsync(ctx, p, blockUntilDone, 2)
	eventually(t, "both running", func() bool { return p.Stats().Running == 2 })
	victim := pids[0]
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	killed := time.Now()

	var ee *mp.ExitError
	select {
	case <-r1.Done():
		_, err := r1.Get(ctx)
		require.ErrorAs(t, err, &ee)
	case <-r2.Done():
		_, err := r2.Get(ctx)
		require.ErrorAs(t, err, &ee)
	case <-time.After(10 * time.Second):
		t.Fatal("the killed worker's task did not fail")
	}
	t.Logf("failed %v after the kill: %v", time.Since(killed), ee)
	assert.Equal(t, victim, ee.Pid)
	assert.Equal(t, -9, ee.ExitCode)
	assert.Contains(t, ee.Error(), "signal 9")

	eventually(t, "the worker replaced", func() bool {
		now := mp.ProcessPoolPids(p)
		return len(now) == 2 && !slices.Contains(now, victim)
	})
	v, err := mp.Apply(ctx, p, square, 5)
	require.NoError(t, err)
	assert.Equal(t, 25, v)
	p.Terminate()
	for _, r := range []*mp.AsyncResult[int]{r1, r2} {
		_, err := r.Get(ctx)
		require.Error(t, err)
	}
	assert.Equal(t, 2, p.Stats().Workers)
}

func TestProcessPoolKilledDuringMap(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 2)
	defer joinClean(t, p)
	eventually(t, "two workers", func() bool { return len(mp.ProcessPoolPids(p)) == 2 })
	done := make(chan error, 1)
	go func() {
		_, err := mp.Map(ctx, p, ignoreCtx, slices.Repeat([]time.Duration{time.Millisecond}, 5000), mp.ChunkSize(10))
		done <- err
	}()
	eventually(t, "Map running", func() bool { return p.Stats().Completed > 5 })
	require.NoError(t, syscall.Kill(mp.ProcessPoolPids(p)[0], syscall.SIGKILL))
	select {
	case err := <-done:
		var ee *mp.ExitError
		require.ErrorAs(t, err, &ee)
	case <-time.After(20 * time.Second):
		t.Fatal("Map hung after a worker was killed")
	}
	v, err := mp.Apply(ctx, p, square, 4)
	require.NoError(t, err)
	assert.Equal(t, 16, v)
}

func TestProcessPoolRetry(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 1, mp.Retry(1))
	v, err := mp.Apply(ctx, p, dieOnce, t.TempDir()+"/died")
	require.NoError(t, err, "retried on a fresh worker")
	assert.Equal(t, 1, v)
	joinClean(t, p)

	q := newProcessPool(t, 1)
	defer joinClean(t, q)
	_, err = mp.Apply(ctx, q, dieOnce, t.TempDir()+"/died")
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 7, ee.ExitCode)
}

func TestProcessPoolPreempts(t *testing.T) {
	p := newProcessPool(t, 1, mp.Grace(50*time.Millisecond))
	defer joinClean(t, p)
	eventually(t, "a worker", func() bool { return len(mp.ProcessPoolPids(p)) == 1 })
	before := mp.ProcessPoolPids(p)[0]

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	behind := mp.ApplyAsync(t.Context(), p, square, 6)
	_, err := mp.Apply(ctx, p, ignoreCtx, time.Hour)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	v, err := behind.Get(t.Context())
	require.NoError(t, err, "a task queued behind the killed one runs on the replacement")
	assert.Equal(t, 36, v)

	// A task that honours its context is not killed.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	_, err = mp.Apply(ctx2, p, blockUntilDone, 0)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	v, err = mp.Apply(t.Context(), p, square, 7)
	require.NoError(t, err)
	assert.Equal(t, 49, v)
	eventually(t, "a replacement worker", func() bool {
		now := mp.ProcessPoolPids(p)
		return len(now) == 1 && now[0] != before
	})
}

func TestProcessPoolTerminate(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 2, mp.QueueSize(20000))
	rs := make([]*mp.AsyncResult[int], 10000)
	for i := range rs {
		rs[i] = mp.ApplyAsync(ctx, p, ignoreCtx, time.Hour)
	}
	p.Terminate()
	// Join reports the results nobody has collected yet.
	require.ErrorIs(t, p.Join(ctx), mp.ErrTerminated)
	for _, r := range rs {
		_, err := r.Get(ctx)
		require.ErrorIs(t, err, mp.ErrTerminated)
	}
	assert.Empty(t, children(t))
	_, err := mp.Apply(ctx, p, square, 1)
	require.ErrorIs(t, err, mp.ErrClosed)
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

func TestProcessPoolLeavesNothingBehind(t *testing.T) {
	ctx := t.Context()
	// A spare holds a descriptor of its own, and may be started or used
	// meanwhile.
	defer mp.SetSpares(mp.SetSpares(0))
	before := openFDs(t)
	p := newProcessPool(t, 3, mp.MaxTasksPerChild(5))
	eventually(t, "three workers", func() bool { return len(mp.ProcessPoolPids(p)) == 3 })
	victim := mp.ProcessPoolPids(p)[1]
	require.NoError(t, syscall.Kill(victim, syscall.SIGKILL))
	eventually(t, "the worker replaced", func() bool {
		now := mp.ProcessPoolPids(p)
		return len(now) == 3 && !slices.Contains(now, victim)
	})
	out, err := mp.Map(ctx, p, square, ints(100), mp.ChunkSize(3))
	require.NoError(t, err)
	assert.Len(t, out, 100)
	joinClean(t, p)
	assert.Equal(t, before, openFDs(t), "every connection to a worker is closed")
}

func TestProcessPoolWorkersIgnoreSIGINT(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 1)
	eventually(t, "a worker", func() bool { return len(mp.ProcessPoolPids(p)) == 1 })
	pid := mp.ProcessPoolPids(p)[0]
	require.NoError(t, syscall.Kill(pid, syscall.SIGINT))
	v, err := mp.Apply(ctx, p, pidOf, 0)
	require.NoError(t, err)
	assert.Equal(t, pid, v, "the worker survived the interrupt")
	joinClean(t, p)
}

func TestProcessPoolMapSeqBreak(t *testing.T) {
	ctx := t.Context()
	p := newProcessPool(t, 2)
	n := 0
	for v, err := range mp.MapSeq(ctx, p, square, slices.Values(ints(100000))) {
		require.NoError(t, err)
		assert.Equal(t, n*n, v)
		if n++; n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n)
	v, err := mp.Apply(ctx, p, square, 9)
	require.NoError(t, err)
	assert.Equal(t, 81, v)
	joinClean(t, p)
}

// A queue in a task's argument works in a process-pool worker as it does in
// a Process child: items a task prefetched but did not take go back to the
// queue when it returns, so the next task on the same worker, or another
// worker, gets them.
func TestProcessPoolQueueArgument(t *testing.T) {
	ctx := t.Context()
	p := mp.NewProcessPool(2)
	q := mp.NewJoinableQueue[int](0)
	out := mp.NewQueue[string](0)

	var results []*mp.AsyncResult[int]
	for range 4 {
		results = append(results, mp.ApplyAsync(ctx, p, consume, jobs{Q: q, Out: out, Stop: 5}))
	}
	for i := range 20 {
		require.NoError(t, q.Put(ctx, i))
	}
	require.NoError(t, q.Join(ctx), "every item is marked done by a worker")

	total := 0
	for _, r := range results {
		n, err := r.Get(ctx)
		require.NoError(t, err)
		total += n
	}
	assert.Equal(t, 20, total)

	seen := map[int]bool{}
	for range 20 {
		s, err := out.Get(ctx)
		require.NoError(t, err)
		pid, item, ok := strings.Cut(s, ":")
		require.True(t, ok, s)
		assert.NotEqual(t, strconv.Itoa(os.Getpid()), pid, "consumed in a worker")
		v, err := strconv.Atoi(item)
		require.NoError(t, err)
		assert.False(t, seen[v], "item %d consumed twice", v)
		seen[v] = true
	}
	assert.Len(t, seen, 20)
	assert.Zero(t, out.Len())

	p.Close()
	require.NoError(t, p.Join(ctx))
}
