//go:build unix

package mp_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// gated submits n tasks that each return their index once its gate is
// closed.
func gated(ctx context.Context, p *mp.Pool, n int) ([]*mp.AsyncResult[int], []chan struct{}) {
	gates := make([]chan struct{}, n)
	rs := make([]*mp.AsyncResult[int], n)
	for i := range n {
		gates[i] = make(chan struct{})
		rs[i] = mp.ApplyAsync(ctx, p, func(ctx context.Context, i int) (int, error) {
			select {
			case <-gates[i]:
				return i, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}, i)
	}
	return rs, gates
}

func TestAsCompleted(t *testing.T) {
	ctx := t.Context()
	p := mp.NewPool(4)
	defer func() { p.Close(); assert.NoError(t, p.Join(ctx)) }()
	rs, gates := gated(ctx, p, 4)
	order := []int{2, 0, 3, 1}
	close(gates[order[0]])
	var got []int
	// rs[1] twice: yielded once.
	for r := range mp.AsCompleted(ctx, append(rs, rs[1])...) {
		v, err := r.Get(ctx)
		require.NoError(t, err)
		got = append(got, v)
		if len(got) < len(order) {
			close(gates[order[len(got)]])
		}
	}
	assert.Equal(t, order, got, "completion order, each once")

	// Results already complete come first, in the order given.
	var again []int
	for r := range mp.AsCompleted(ctx, rs[3], rs[0]) {
		v, _ := r.Get(ctx)
		again = append(again, v)
	}
	assert.Equal(t, []int{3, 0}, again)
}

func TestAsCompletedStops(t *testing.T) {
	ctx := t.Context()
	p := mp.NewPool(4)
	rs, gates := gated(ctx, p, 4)
	leaks := goleak.IgnoreCurrent()

	close(gates[1])
	n := 0
	for range mp.AsCompleted(ctx, rs...) {
		n++
		break
	}
	assert.Equal(t, 1, n)
	require.NoError(t, goleak.Find(leaks), "break left goroutines behind")

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n = 0
	for r := range mp.AsCompleted(cctx, rs...) {
		n++
		assert.Same(t, rs[1], r)
		cancel()
	}
	assert.Equal(t, 1, n, "the sequence ends when ctx is done")
	require.NoError(t, goleak.Find(leaks), "ctx left goroutines behind")

	for _, g := range gates[2:] {
		close(g)
	}
	close(gates[0])
	p.Close()
	require.NoError(t, p.Join(ctx))
}

func TestCancel(t *testing.T) {
	ctx := t.Context()
	p := mp.NewPool(1)
	started, gate := make(chan struct{}), make(chan struct{})
	// The first task occupies the only worker.
	first := mp.ApplyAsync(ctx, p, func(context.Context, int) (int, error) {
		close(started)
		<-gate
		return 0, nil
	}, 0)
	var ran atomic.Bool
	queued := mp.ApplyAsync(ctx, p, func(context.Context, int) (int, error) {
		ran.Store(true)
		return 1, nil
	}, 0)
	assert.True(t, queued.Cancel(), "a queued task is cancelled")
	assert.False(t, queued.Cancel(), "once")
	_, err := queued.Get(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	// Stats counts a task as running once a worker takes it, a moment
	// before it starts: wait for the task itself.
	<-started
	assert.False(t, first.Cancel(), "a running task is not cancelled")
	close(gate)
	v, err := first.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, v, "the running task kept its result")
	assert.False(t, first.Cancel(), "a finished task is not cancelled")
	p.Close()
	require.NoError(t, p.Join(ctx), "a cancelled task's error is not reported")
	assert.False(t, ran.Load(), "the cancelled task ran")
}

var touchOnce = mp.Register(func(_ context.Context, path string) (string, error) {
	return path, os.WriteFile(path, nil, 0o644)
})

var waitForEvent = mp.Register(func(ctx context.Context, e *mp.Event) (struct{}, error) {
	return struct{}{}, e.Wait(ctx)
})

// TestCancelProcessPool checks Cancel on a process pool that sends one
// task at a time (Pipeline(1)): the queued task's child never runs it.
func TestCancelProcessPool(t *testing.T) {
	ctx := t.Context()
	p := mp.NewProcessPool(1, mp.Pipeline(1))
	e := mp.NewEvent()
	running := mp.ApplyAsync(ctx, p, waitForEvent, e)
	path := t.TempDir() + "/ran"
	queued := mp.ApplyAsync(ctx, p, touchOnce, path)
	assert.True(t, queued.Cancel())
	_, err := queued.Get(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	e.Set()
	_, err = running.Get(ctx)
	require.NoError(t, err)
	assert.False(t, running.Cancel())
	p.Close()
	require.NoError(t, p.Join(ctx))
	assert.NoFileExists(t, path, "the cancelled task ran")
}

func TestMapAsync(t *testing.T) {
	ctx := t.Context()
	p := mp.NewPool(3)
	items := []int{1, 2, 3, 4, 5, 6, 7}
	r := mp.MapAsync(ctx, p, func(_ context.Context, x int) (int, error) { return x * x, nil }, items, mp.ChunkSize(2))
	p.Close() // the items were submitted already
	got, err := r.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 4, 9, 16, 25, 36, 49}, got)
	assert.False(t, r.Cancel())
	require.NoError(t, p.Join(ctx))

	// An error nobody collects is reported by Join.
	p = mp.NewPool(2)
	boom := errors.New("boom")
	r = mp.MapAsync(ctx, p, func(_ context.Context, x int) (int, error) { return 0, boom }, items)
	p.Close()
	<-r.Done()
	assert.ErrorIs(t, p.Join(ctx), boom)

	// After Close, MapAsync resolves with ErrClosed.
	r = mp.MapAsync(ctx, p, func(_ context.Context, x int) (int, error) { return x, nil }, items)
	_, err = r.Get(ctx)
	assert.ErrorIs(t, err, mp.ErrClosed)

	p = mp.NewPool(1)
	r = mp.MapAsync(ctx, p, func(_ context.Context, x int) (int, error) { return x, nil }, nil)
	got, err = r.Get(ctx)
	require.NoError(t, err)
	assert.Empty(t, got)
	p.Close()
	require.NoError(t, p.Join(ctx))
}

var double = mp.Register(func(_ context.Context, x int) (int, error) { return 2 * x, nil })

func TestMapAsyncProcessPool(t *testing.T) {
	ctx := t.Context()
	p := mp.NewProcessPool(2)
	r := mp.MapAsync(ctx, p, double, []int{1, 2, 3})
	p.Close()
	got, err := r.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 4, 6}, got)
	require.NoError(t, p.Join(ctx))
}

func TestActiveChildren(t *testing.T) {
	ctx := t.Context()
	e := mp.NewEvent()
	a := mp.NewProcess(waitForEvent, e)
	a.Name = "waiter-a"
	b := mp.NewProcess(waitForEvent, e)
	require.NoError(t, a.Start())
	require.NoError(t, b.Start())
	pool := mp.NewProcessPool(1)
	_, err := mp.Apply(ctx, pool, double, 1)
	require.NoError(t, err)

	names := map[int]string{}
	for _, c := range mp.ActiveChildren() {
		assert.True(t, c.IsChild)
		assert.Equal(t, c.ParentPid, mp.CurrentProcess().Pid)
		names[c.Pid] = c.Name
	}
	assert.Equal(t, "waiter-a", names[a.Pid()])
	assert.True(t, strings.HasPrefix(names[b.Pid()], "Process-"), names[b.Pid()])
	assert.True(t, slices.ContainsFunc(mp.ActiveChildren(), func(c mp.ProcessInfo) bool {
		return strings.HasPrefix(c.Name, "PoolWorker-")
	}), "the pool's worker is listed")

	e.Set()
	require.NoError(t, a.Join(ctx))
	require.NoError(t, b.Join(ctx))
	pool.Close()
	require.NoError(t, pool.Join(ctx))
	for _, c := range mp.ActiveChildren() {
		assert.NotEqual(t, a.Pid(), c.Pid, "a joined child is listed")
		assert.NotEqual(t, b.Pid(), c.Pid, "a joined child is listed")
		assert.False(t, strings.HasPrefix(c.Name, "PoolWorker-"), "a joined pool's worker is listed")
	}
}

// TestAsCompletedProcessPool yields the results of a process pool, each
// once.
func TestAsCompletedProcessPool(t *testing.T) {
	ctx := t.Context()
	p := mp.NewProcessPool(2)
	defer func() { p.Close(); assert.NoError(t, p.Join(ctx)) }()
	var rs []*mp.AsyncResult[int]
	for i := range 10 {
		rs = append(rs, mp.ApplyAsync(ctx, p, double, i))
	}
	var got []int
	for r := range mp.AsCompleted(ctx, rs...) {
		v, err := r.Get(ctx)
		require.NoError(t, err)
		got = append(got, v)
	}
	slices.Sort(got)
	assert.Equal(t, []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}, got)
}
