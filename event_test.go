//go:build unix

package mp_test

import (
	"context"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventInProcess(t *testing.T) {
	ctx := t.Context()
	var e mp.Event // the zero value is clear
	assert.False(t, e.IsSet())
	done := make(chan error, 3)
	for range 3 {
		go func() { done <- e.Wait(ctx) }()
	}
	e.Set()
	for range 3 {
		assert.NoError(t, <-done)
	}
	assert.True(t, e.IsSet())
	assert.NoError(t, e.Wait(ctx), "Wait on a set event")
	e.Clear()
	assert.False(t, e.IsSet())
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- e.Wait(cctx) }()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

type eventArgs struct {
	E       *mp.Event
	Started *mp.Queue[int]
	Timeout time.Duration // 0: none
}

// waitEvent reports that it started, waits for the event and says whether
// it is set.
var waitEvent = mp.Register(func(ctx context.Context, a eventArgs) (string, error) {
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	if a.Started != nil {
		if err := a.Started.Put(ctx, 1); err != nil {
			return "", err
		}
	}
	if err := a.E.Wait(ctx); err != nil {
		return err.Error(), nil
	}
	if !a.E.IsSet() {
		return "woken but not set", nil
	}
	return "set", nil
})

// setEvent sets the event, from a child.
var setEvent = mp.Register(func(_ context.Context, e *mp.Event) (struct{}, error) {
	e.Set()
	return struct{}{}, nil
})

func TestEventProcesses(t *testing.T) {
	ctx := t.Context()
	e := mp.NewEvent()
	started := mp.NewQueue[int](0)
	var ps []*mp.Process[string]
	for range 3 {
		p := mp.NewProcess(waitEvent, eventArgs{E: e, Started: started})
		require.NoError(t, p.Start())
		ps = append(ps, p)
	}
	for range 3 {
		_, err := started.Get(ctx)
		require.NoError(t, err)
	}
	e.Set()
	for _, p := range ps {
		require.NoError(t, p.Join(ctx))
		got, _ := p.Result()
		assert.Equal(t, "set", got)
	}

	// A child sets it; the owner sees it.
	e.Clear()
	p := mp.NewProcess(setEvent, e)
	require.NoError(t, p.Start())
	require.NoError(t, e.Wait(ctx))
	require.NoError(t, p.Join(ctx))
}

func TestEventCancelInChild(t *testing.T) {
	ctx := t.Context()
	e := mp.NewEvent()
	p := mp.NewProcess(waitEvent, eventArgs{E: e, Timeout: 20 * time.Millisecond})
	require.NoError(t, p.Start())
	require.NoError(t, p.Join(ctx))
	got, _ := p.Result()
	assert.Equal(t, context.DeadlineExceeded.Error(), got)
}
