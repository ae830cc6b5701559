//go:build unix

package mp_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSemaphoreInProcess(t *testing.T) {
	ctx := t.Context()
	s := mp.NewSemaphore(3)
	var in, most atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 200 {
				assert.NoError(t, s.Acquire(ctx, 1))
				n := in.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				in.Add(-1)
				s.Release(1)
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, most.Load(), int64(3))

	require.True(t, s.TryAcquire(3))
	assert.False(t, s.TryAcquire(1))
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- s.Acquire(cctx, 2) }()
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	s.Release(3)
	assert.True(t, s.TryAcquire(3), "the cancelled Acquire left units taken")
	s.Release(3)
	assert.PanicsWithValue(t, "mp: Semaphore released more than held", func() { s.Release(1) })
	assert.PanicsWithValue(t, "mp: negative Semaphore size", func() { mp.NewSemaphore(-1) })
}

type semHolders struct {
	S   *mp.Semaphore
	L   *mp.Lock
	Dir string // holds the file of the count of holders
	N   int
}

// holdSemaphore acquires a unit N times and, holding it, adds 1 to the
// count of holders, notes the count, and takes 1 off again; the count is
// a file under a Lock. It returns the largest count it saw.
var holdSemaphore = mp.Register(func(ctx context.Context, a semHolders) (int, error) {
	f := counterFile(a.Dir + "/holders")
	most := 0
	step := func(d int) (int, error) {
		if err := a.L.Lock(ctx); err != nil {
			return 0, err
		}
		defer a.L.Unlock()
		if err := f.add(d); err != nil {
			return 0, err
		}
		b, err := os.ReadFile(string(f))
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(string(b))
	}
	for range a.N {
		if err := a.S.Acquire(ctx, 1); err != nil {
			return 0, err
		}
		n, err := step(1)
		if err != nil {
			return 0, err
		}
		most = max(most, n)
		time.Sleep(time.Millisecond) // let the others pile up
		if _, err := step(-1); err != nil {
			return 0, err
		}
		a.S.Release(1)
	}
	return most, nil
})

// TestSemaphoreProcesses checks that no more than n processes hold a unit
// at once.
func TestSemaphoreProcesses(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/holders", []byte("0"), 0o644))
	a := semHolders{S: mp.NewSemaphore(2), L: mp.NewLock(), Dir: dir, N: 30}
	var ps []*mp.Process[int]
	for range 5 {
		p := mp.NewProcess(holdSemaphore, a)
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	most := 0
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
		n, err := p.Result()
		require.NoError(t, err)
		most = max(most, n)
	}
	assert.LessOrEqual(t, most, 2)
	assert.Positive(t, most)
	assert.True(t, a.S.TryAcquire(2), "units left held")
}

type semHold struct {
	S    *mp.Semaphore
	N    int64
	Held *mp.Queue[int]
}

var acquireAndWait = mp.Register(func(ctx context.Context, a semHold) (struct{}, error) {
	if err := a.S.Acquire(ctx, a.N); err != nil {
		return struct{}{}, err
	}
	if err := a.Held.Put(ctx, os.Getpid()); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})

// TestSemaphoreHolderDies checks that the units of a dead child come back,
// and that the next acquirer is told with ErrLost.
func TestSemaphoreHolderDies(t *testing.T) {
	ctx := t.Context()
	s := mp.NewSemaphore(3)
	held := mp.NewQueue[int](0)
	p := mp.NewProcess(acquireAndWait, semHold{S: s, N: 2, Held: held})
	require.NoError(t, p.Start())
	pid, err := held.Get(ctx)
	require.NoError(t, err)
	assert.False(t, s.TryAcquire(2), "the child holds 2 of 3")
	require.NoError(t, p.Kill())
	_ = p.Join(ctx)
	err = s.Acquire(ctx, 3)
	require.ErrorIs(t, err, mp.ErrLost)
	assert.Contains(t, err.Error(), "process "+strconv.Itoa(pid)+" died holding 2 Semaphore units")
	assert.False(t, s.TryAcquire(1), "Acquire holds its units")
	s.Release(3)
	require.NoError(t, s.Acquire(ctx, 1), "the report is given once")
	s.Release(1)
}

type semTry struct {
	S       *mp.Semaphore
	Timeout time.Duration
}

var acquireBriefly = mp.Register(func(ctx context.Context, a semTry) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	if err := a.S.Acquire(ctx, 1); err != nil {
		return err.Error(), nil
	}
	a.S.Release(1)
	if !a.S.TryAcquire(1) {
		return "TryAcquire failed", nil
	}
	a.S.Release(1)
	return "acquired", nil
})

// TestSemaphoreCancelInChild checks that a child's Acquire whose ctx ends
// leaves nothing behind in the owner.
func TestSemaphoreCancelInChild(t *testing.T) {
	ctx := t.Context()
	pool := mp.NewProcessPool(1)
	defer func() { pool.Close(); assert.NoError(t, pool.Join(ctx)) }()
	s := mp.NewSemaphore(1)
	require.True(t, s.TryAcquire(1))
	got, err := mp.Apply(ctx, pool, acquireBriefly, semTry{S: s, Timeout: 20 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, context.DeadlineExceeded.Error(), got)
	s.Release(1)
	assert.True(t, s.TryAcquire(1), "the worker's cancelled Acquire took the unit")
	s.Release(1)
	got, err = mp.Apply(ctx, pool, acquireBriefly, semTry{S: s, Timeout: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, "acquired", got)
}
