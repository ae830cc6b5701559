//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBarrierInProcess(t *testing.T) {
	ctx := t.Context()
	const parties, rounds = 4, 20
	b := mp.NewBarrier(parties)
	var mu sync.Mutex
	arrived := make([]int, rounds)
	idx := make([][]int, rounds)
	var wg sync.WaitGroup
	for range parties {
		wg.Go(func() {
			for r := range rounds {
				mu.Lock()
				arrived[r]++
				mu.Unlock()
				i, err := b.Wait(ctx)
				assert.NoError(t, err)
				mu.Lock()
				assert.Equal(t, parties, arrived[r], "released before all arrived")
				idx[r] = append(idx[r], i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for r := range rounds {
		slices.Sort(idx[r])
		assert.Equal(t, []int{0, 1, 2, 3}, idx[r], "round %d", r)
	}

	// Abort breaks it for the waiting and the later; Reset mends it.
	errc := make(chan error)
	go func() { _, err := b.Wait(ctx); errc <- err }()
	for b.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	b.Abort()
	assert.ErrorIs(t, <-errc, mp.ErrBrokenBarrier)
	i, err := b.Wait(ctx)
	assert.ErrorIs(t, err, mp.ErrBrokenBarrier)
	assert.Equal(t, -1, i)
	b.Reset()
	one := mp.NewBarrier(1)
	i, err = one.Wait(ctx)
	assert.NoError(t, err)
	assert.Equal(t, 0, i)

	// A party whose ctx ends breaks the barrier for the others.
	go func() { _, err := b.Wait(ctx); errc <- err }()
	for b.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { _, err := b.Wait(cctx); errc <- err }()
	for b.Waiting() != 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	errs := []error{<-errc, <-errc}
	assert.True(t, slices.ContainsFunc(errs, func(e error) bool { return e == context.Canceled }), "%v", errs)
	assert.True(t, slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, mp.ErrBrokenBarrier) }), "%v", errs)
	assert.Equal(t, 0, b.Waiting(), "a waiter left behind")
	assert.PanicsWithValue(t, "mp: Barrier needs at least one party", func() { mp.NewBarrier(0) })
}

type barrierPhases struct {
	B      *mp.Barrier
	Dir    string
	Phases int
}

// phases goes through the phases: in each it leaves a file, waits at the
// barrier, and then counts the files of the phase, which must be one per
// party. It returns its index in each phase.
var phases = mp.Register(func(ctx context.Context, a barrierPhases) ([]int, error) {
	var idx []int
	for ph := range a.Phases {
		name := filepath.Join(a.Dir, fmt.Sprintf("%d-%d", ph, os.Getpid()))
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			return nil, err
		}
		i, err := a.B.Wait(ctx)
		if err != nil {
			return nil, err
		}
		m, err := filepath.Glob(filepath.Join(a.Dir, fmt.Sprintf("%d-*", ph)))
		if err != nil {
			return nil, err
		}
		if len(m) != 4 {
			return nil, fmt.Errorf("phase %d: released with %d of 4 parties arrived", ph, len(m))
		}
		idx = append(idx, i)
	}
	return idx, nil
})

func TestBarrierProcesses(t *testing.T) {
	ctx := t.Context()
	a := barrierPhases{B: mp.NewBarrier(4), Dir: t.TempDir(), Phases: 5}
	var ps []*mp.Process[[]int]
	for range 3 {
		p := mp.NewProcess(phases, a)
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	// The owner is the fourth party, on a goroutine.
	th := mp.NewThread(phases, a)
	require.NoError(t, th.Start())
	all := [][]int{}
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
		idx, err := p.Result()
		require.NoError(t, err)
		all = append(all, idx)
	}
	require.NoError(t, th.Join(ctx))
	idx, err := th.Result()
	require.NoError(t, err)
	all = append(all, idx)
	for ph := range a.Phases {
		var got []int
		for _, idx := range all {
			got = append(got, idx[ph])
		}
		slices.Sort(got)
		assert.Equal(t, []int{0, 1, 2, 3}, got, "phase %d", ph)
	}
}

type barrierWait struct {
	B       *mp.Barrier
	Timeout time.Duration // 0: none
}

// waitBarrier waits at the barrier and returns the error's text.
var waitBarrier = mp.Register(func(ctx context.Context, a barrierWait) (string, error) {
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	_, err := a.B.Wait(ctx)
	return fmt.Sprint(err), nil
})

// TestBarrierPartyDies checks that a child killed while waiting at a
// barrier breaks it for the others.
func TestBarrierPartyDies(t *testing.T) {
	ctx := t.Context()
	b := mp.NewBarrier(3)
	p := mp.NewProcess(waitBarrier, barrierWait{B: b})
	require.NoError(t, p.Start())
	errc := make(chan error)
	go func() { _, err := b.Wait(ctx); errc <- err }()
	for b.Waiting() != 2 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, p.Kill())
	err := <-errc
	require.ErrorIs(t, err, mp.ErrBrokenBarrier)
	assert.Contains(t, err.Error(), fmt.Sprintf("process %d died waiting at it", p.Pid()))
	_ = p.Join(ctx)
	_, err = b.Wait(ctx)
	assert.ErrorIs(t, err, mp.ErrBrokenBarrier, "broken until Reset")
}

// TestBarrierCancelInChild checks that a child whose ctx ends at the
// barrier breaks it, leaves no waiter, and that the error and the broken
// state cross.
func TestBarrierCancelInChild(t *testing.T) {
	ctx := t.Context()
	b := mp.NewBarrier(2)
	p := mp.NewProcess(waitBarrier, barrierWait{B: b, Timeout: 20 * time.Millisecond})
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx))
	got, _ := p.Result()
	assert.Equal(t, context.DeadlineExceeded.Error(), got)
	assert.Equal(t, 0, b.Waiting())
	_, err := b.Wait(ctx)
	assert.ErrorIs(t, err, mp.ErrBrokenBarrier)

	// A broken barrier fails a child's Wait with ErrBrokenBarrier.
	p = mp.NewProcess(waitBarrier, barrierWait{B: b})
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx))
	got, _ = p.Result()
	assert.Contains(t, got, mp.ErrBrokenBarrier.Error())
	b.Reset()
	p = mp.NewProcess(waitBarrier, barrierWait{B: b})
	require.NoError(t, p.Start())
	i, err := b.Wait(ctx)
	require.NoError(t, err)
	assert.Contains(t, []int{0, 1}, i)
	require.NoError(t, p.Join(ctx))
	got, _ = p.Result()
	assert.Equal(t, "<nil>", got)
}

type barrierInfo struct{ B *mp.Barrier }

var barrierInfoTask = mp.Register(func(_ context.Context, a barrierInfo) (string, error) {
	return fmt.Sprint(a.B.Parties(), a.B.Waiting(), a.B.Broken()), nil
})

// TestBarrierInfo checks Parties, Waiting and Broken, in the owner and in
// a child.
func TestBarrierInfo(t *testing.T) {
	ctx := t.Context()
	b := mp.NewBarrier(3)
	go func() { _, _ = b.Wait(ctx) }()
	for b.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, 3, b.Parties())
	assert.False(t, b.Broken())
	p := mp.NewProcess(barrierInfoTask, barrierInfo{B: b})
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx))
	got, _ := p.Result()
	assert.Equal(t, "3 1 false", got)
	b.Abort()
	assert.True(t, b.Broken())
	assert.Equal(t, 0, b.Waiting())
}
