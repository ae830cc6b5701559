//go:build unix

package mp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCondInProcess(t *testing.T) {
	ctx := t.Context()
	c := mp.NewCond(mp.NewLock())
	ready := 0
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			assert.NoError(t, c.L.Lock(ctx))
			for ready == 0 {
				assert.NoError(t, c.Wait(ctx))
			}
			ready++
			c.L.Unlock()
		})
	}
	for mp.CondWaiters(c) != 3 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, c.L.Lock(ctx))
	ready = 1
	c.Signal()
	c.L.Unlock()
	for {
		require.NoError(t, c.L.Lock(ctx))
		r := ready
		c.L.Unlock()
		if r == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, 2, mp.CondWaiters(c), "Signal woke one")
	c.Broadcast()
	wg.Wait()
	assert.Equal(t, 4, ready)

	// A Wait whose ctx ends returns its error holding the lock, and leaves
	// no waiter.
	require.NoError(t, c.L.Lock(ctx))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, c.Wait(cctx), context.Canceled)
	assert.False(t, c.L.TryLock(), "Wait gave the lock back")
	c.L.Unlock()
	assert.Equal(t, 0, mp.CondWaiters(c))
	assert.PanicsWithValue(t, "mp: Cond.Wait without holding its Lock", func() { _ = c.Wait(ctx) })
	assert.PanicsWithValue(t, "mp: NewCond with a nil Lock", func() { mp.NewCond(nil) })
}

type condArgs struct {
	C       *mp.Cond
	Ready   *mp.Event // the condition
	Timeout time.Duration
}

// waitCond waits under c.L until Ready is set; it returns the error's
// text, and unlocks (which panics if Wait did not give the lock back).
var waitCond = mp.Register(func(ctx context.Context, a condArgs) (string, error) {
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	if err := a.C.L.Lock(ctx); err != nil {
		return "", err
	}
	defer a.C.L.Unlock()
	for !a.Ready.IsSet() {
		if err := a.C.Wait(ctx); err != nil {
			return err.Error(), nil
		}
	}
	return "woken", nil
})

func TestCondProcesses(t *testing.T) {
	ctx := t.Context()
	a := condArgs{C: mp.NewCond(mp.NewLock()), Ready: mp.NewEvent()}
	var ps []*mp.Process[string]
	for range 3 {
		p := mp.NewProcess(waitCond, a)
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	for mp.CondWaiters(a.C) != 3 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, a.C.L.Lock(ctx))
	a.Ready.Set()
	a.C.Signal()
	a.C.L.Unlock()
	for mp.CondWaiters(a.C) != 2 {
		time.Sleep(time.Millisecond)
	}
	a.C.Broadcast()
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
		got, err := p.Result()
		require.NoError(t, err)
		assert.Equal(t, "woken", got)
	}
	assert.True(t, a.C.L.TryLock(), "a child left the lock held")
}

func TestCondCancelInChild(t *testing.T) {
	ctx := t.Context()
	a := condArgs{C: mp.NewCond(mp.NewLock()), Ready: mp.NewEvent(), Timeout: 20 * time.Millisecond}
	p := mp.NewProcess(waitCond, a)
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx), "the child's Unlock after the cancelled Wait did not panic")
	got, _ := p.Result()
	assert.Equal(t, context.DeadlineExceeded.Error(), got)
	assert.Equal(t, 0, mp.CondWaiters(a.C))
	require.NoError(t, a.C.L.Lock(ctx), "the lock was released cleanly")
	a.C.L.Unlock()
}
