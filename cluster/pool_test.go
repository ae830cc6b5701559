package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMapApplyMapSeq(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p", cluster.Slots(4))
	serve(t, srv, "p", cluster.Slots(4))
	p := pool(t, srv, "p", cluster.Window(8))
	ctx := t.Context()

	items := make([]int, 500)
	for i := range items {
		items[i] = i
	}
	out, err := mp.Map(ctx, p, square, items)
	require.NoError(t, err)
	for i, v := range out {
		require.Equal(t, i*i, v)
	}
	v, err := mp.Apply(ctx, p, square, 12)
	require.NoError(t, err)
	assert.Equal(t, 144, v)

	var got []int
	for v, err := range mp.MapSeq(ctx, p, square, func(yield func(int) bool) {
		for i := range 20 {
			if !yield(i) {
				return
			}
		}
	}) {
		require.NoError(t, err)
		got = append(got, v)
	}
	require.Len(t, got, 20)
	assert.Equal(t, 361, got[19])
	p.Close()
	require.NoError(t, p.Join(ctx))
}

func TestErrorsArriveTyped(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p")
	p := pool(t, srv, "p")
	ctx := t.Context()

	_, err := mp.Apply(ctx, p, failing, 7)
	require.EqualError(t, err, "task 7 failed")

	_, err = mp.Apply(ctx, p, panicky, 3)
	var pe *mp.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Error(), "boom 3")

	_, err = mp.Apply(ctx, p, func(context.Context, int) (int, error) { return 0, nil }, 1)
	require.ErrorIs(t, err, mp.ErrNotRegistered)
}

func TestDeadlineTravels(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p")
	p := pool(t, srv, "p")
	want := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(t.Context(), want)
	defer cancel()
	got, err := mp.Apply(ctx, p, deadline, 0)
	require.NoError(t, err)
	assert.Equal(t, want.UnixNano(), got)

	got, err = mp.Apply(t.Context(), p, deadline, 0)
	require.NoError(t, err)
	assert.Zero(t, got, "a task without a deadline runs without one")
}

func TestCancelReachesWorker(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p")
	p := pool(t, srv, "p")
	before := blockedCancelled.Load()
	ctx, cancel := context.WithCancelCause(t.Context())
	r := mp.ApplyAsync(ctx, p, blocked, 0)
	<-blockedStarted
	cancel(errAny)
	_, err := r.Get(t.Context())
	require.ErrorIs(t, err, errAny)
	require.Eventually(t, func() bool { return blockedCancelled.Load() == before+1 }, 10*time.Second, time.Millisecond)
}

func TestTerminate(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p", cluster.Slots(2))
	p := pool(t, srv, "p")
	before := blockedCancelled.Load()
	var rs []*mp.AsyncResult[int]
	for range 5 {
		rs = append(rs, mp.ApplyAsync(t.Context(), p, blocked, 0))
	}
	<-blockedStarted
	<-blockedStarted
	p.Terminate()
	for _, r := range rs {
		_, err := r.Get(t.Context())
		require.ErrorIs(t, err, mp.ErrTerminated)
	}
	require.Eventually(t, func() bool { return blockedCancelled.Load() == before+2 }, 10*time.Second, time.Millisecond)

	// The worker serves on, and nothing of the terminated pool is left
	// to run.
	q := pool(t, srv, "p")
	v, err := mp.Apply(t.Context(), q, square, 3)
	require.NoError(t, err)
	assert.Equal(t, 9, v)
	_, err = mp.Apply(t.Context(), p, square, 3)
	require.ErrorIs(t, err, mp.ErrClosed)
}

func TestTooLargeIsAnError(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p")
	p := pool(t, srv, "p")
	_, err := mp.Apply(t.Context(), p, echoB, make([]byte, 9<<20))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_payload")

	_, err = mp.Apply(t.Context(), p, grow, 9<<20)
	require.ErrorContains(t, err, "the task's reply takes")

	big := bytes.Repeat([]byte{1}, 1<<20)
	got, err := mp.Apply(t.Context(), p, echoB, big)
	require.NoError(t, err)
	assert.Equal(t, big, got)
}

func TestNoWorkerWaitsForContext(t *testing.T) {
	srv := server(t)
	p := pool(t, srv, "p")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := mp.Apply(ctx, p, square, 2)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

var grow = mp.Register(func(_ context.Context, n int) ([]byte, error) { return make([]byte, n), nil })

var exiting = mp.Register(func(_ context.Context, code int) (int, error) {
	os.Exit(code)
	return 0, nil
})

func TestServeOnProcessPool(t *testing.T) {
	srv := server(t)
	serve(t, srv, "p", cluster.Slots(2), cluster.ProcessPool())
	p := pool(t, srv, "p")
	ctx := t.Context()

	// A task that kills its process takes down one worker process, not
	// the serving program.
	_, err := mp.Apply(ctx, p, exiting, 3)
	var ee *mp.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode)

	v, err := mp.Apply(ctx, p, pidOf, 0)
	require.NoError(t, err)
	assert.NotEqual(t, os.Getpid(), v, "the task ran in a worker process")
}
