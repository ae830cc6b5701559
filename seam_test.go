//go:build unix

package mp_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/backend"
	"github.com/mpgo/mp/backend/backendtest"
)

// loopback is the smallest remote back-end: each worker takes a task,
// runs its encoded request with mp.RunRequest on a local pool, and
// resolves the task with the reply. Every value and error crosses in
// encoded form, as it would between machines.
type loopback struct {
	local  *mp.Pool
	ctx    context.Context // cancelled by Terminate
	cancel context.CancelCauseFunc
}

func newLoopback(local *mp.Pool) *loopback {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &loopback{local: local, ctx: ctx, cancel: cancel}
}

func (l *loopback) Remote() bool { return true }
func (l *loopback) Terminate()   { l.cancel(mp.ErrTerminated) }

func (l *loopback) Work(_ int, q backend.Queue) {
	for {
		t, ok := q.Next()
		if !ok {
			return
		}
		q.Started()
		if q.Terminated() {
			t.Fail(mp.ErrTerminated)
			q.Ended(true)
			continue
		}
		if tc := t.Context(); tc != nil && tc.Err() != nil {
			t.Fail(context.Cause(tc))
			q.Ended(true)
			continue
		}
		req, err := t.Request()
		if err != nil {
			t.Fail(err)
			q.Ended(true)
			continue
		}
		ctx, release := l.ctx, func() {}
		if tc := t.Context(); tc != nil {
			c, cancel := context.WithCancelCause(tc)
			stop := context.AfterFunc(l.ctx, func() { cancel(mp.ErrTerminated) })
			ctx, release = c, func() { stop(); cancel(nil) }
		}
		r := mp.RunRequest(ctx, l.local, req)
		release()
		q.Ended(t.Complete(r, nil))
	}
}

// newLoopbackPool returns a pool of workers whose tasks cross the seam to
// local, which the test closes after the pool.
func newLoopbackPool(t *testing.T, workers int, local *mp.Pool) *mp.Pool {
	t.Helper()
	p := mp.NewPoolOn(workers, newLoopback(local))
	t.Cleanup(func() {
		p.Terminate()
		_ = p.Join(context.Background())
		local.Terminate()
		_ = local.Join(context.Background())
	})
	return p
}

func TestPoolOnRunsEveryAPI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local func() *mp.Pool
	}{
		{"goroutines", func() *mp.Pool { return mp.NewPool(2) }},
		{"processes", func() *mp.Pool { return mp.NewProcessPool(2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			p := newLoopbackPool(t, 3, tc.local())

			items := make([]int, 100)
			for i := range items {
				items[i] = i
			}
			got, err := mp.Map(ctx, p, square, items, mp.ChunkSize(7))
			require.NoError(t, err)
			for i, v := range got {
				require.Equal(t, i*i, v, "item %d", i)
			}

			v, err := mp.Apply(ctx, p, square, 12)
			require.NoError(t, err)
			assert.Equal(t, 144, v)

			var seq []int
			for r, err := range mp.MapSeq(ctx, p, square, slices.Values([]int{3, 4, 5})) {
				require.NoError(t, err)
				seq = append(seq, r)
			}
			assert.Equal(t, []int{9, 16, 25}, seq)

			// A task's error keeps its type and its sentinel, and a panic
			// arrives as a *PanicError, across the seam as across a process.
			_, err = mp.Apply(ctx, p, failWith, "typed")
			var q quotaError
			require.ErrorAs(t, err, &q)
			assert.Equal(t, 7, q.Limit)
			_, err = mp.Apply(ctx, p, failWith, "sentinel")
			assert.ErrorIs(t, err, mp.ErrClosed)
			_, err = mp.Apply(ctx, p, failWith, "panic")
			var pe *mp.PanicError
			assert.ErrorAs(t, err, &pe)
		})
	}
}

func TestPoolOnRefusesClosures(t *testing.T) {
	p := newLoopbackPool(t, 1, mp.NewPool(1))
	local := func(_ context.Context, x int) (int, error) { return x, nil }
	_, err := mp.Apply(t.Context(), p, local, 1)
	assert.ErrorIs(t, err, mp.ErrNotRegistered)
	_, err = mp.Map(t.Context(), p, local, []int{1, 2})
	assert.ErrorIs(t, err, mp.ErrNotRegistered)
	assert.ErrorIs(t, p.Go(func(context.Context) error { return nil }), mp.ErrNotRegistered)
}

func TestPoolOnTerminate(t *testing.T) {
	p := newLoopbackPool(t, 1, mp.NewPool(1))
	running := mp.ApplyAsync(context.Background(), p, blockUntilDone, 0)
	queued := mp.ApplyAsync(context.Background(), p, square, 2)
	p.Terminate()
	_, err := queued.Get(t.Context())
	assert.ErrorIs(t, err, mp.ErrTerminated)
	_, err = running.Get(t.Context())
	assert.ErrorIs(t, err, mp.ErrTerminated)
	// Both errors were collected.
	assert.NoError(t, p.Join(t.Context()))
}

func TestNewPoolOnMisuse(t *testing.T) {
	assert.PanicsWithValue(t, "mp: NewPoolOn needs at least one worker", func() {
		mp.NewPoolOn(0, newLoopback(nil))
	})
	assert.Panics(t, func() { mp.NewPoolOn(1, nil) })
}

func TestRunRequestReportsBadRequests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local func() *mp.Pool
	}{
		{"goroutines", func() *mp.Pool { return mp.NewPool(1) }},
		{"processes", func() *mp.Pool { return mp.NewProcessPool(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.local()
			defer func() {
				p.Close()
				require.NoError(t, p.Join(context.Background()))
			}()
			r := mp.RunRequest(t.Context(), p, backend.Request{Func: "no.such.task func(int) int"})
			require.NotNil(t, r.Err)
			assert.ErrorIs(t, decodeReplyError(t, p, r), mp.ErrNotRegistered)
		})
	}
	p := mp.NewPool(1)
	p.Close()
	require.NoError(t, p.Join(t.Context()))
	r := mp.RunRequest(t.Context(), p, backend.Request{Func: "x"})
	assert.ErrorIs(t, decodeReplyError(t, p, r), mp.ErrClosed)
}

// decodeReplyError returns the error a reply carries, as a task resolved
// with the reply sees it: through a loopback pool whose local side
// answers every request with r.
func decodeReplyError(t *testing.T, _ *mp.Pool, r backend.Reply) error {
	t.Helper()
	p := mp.NewPoolOn(1, fixedReply(r))
	defer func() {
		p.Close()
		_ = p.Join(context.Background())
	}()
	_, err := mp.Apply(t.Context(), p, square, 1)
	require.Error(t, err)
	return err
}

// fixedReply is a back-end that resolves every task with one reply.
type fixedReply backend.Reply

func (fixedReply) Remote() bool { return true }
func (fixedReply) Terminate()   {}

func (f fixedReply) Work(_ int, q backend.Queue) {
	for t, ok := q.Next(); ok; t, ok = q.Next() {
		q.Started()
		q.Ended(t.Complete(backend.Reply(f), nil))
	}
}

func TestPoolOnBackendFailure(t *testing.T) {
	// A back-end's own error wins over the reply.
	p := mp.NewPoolOn(2, failing{})
	_, err := mp.Apply(t.Context(), p, square, 1)
	assert.ErrorIs(t, err, errLink)
	_, err = mp.Map(t.Context(), p, square, []int{1, 2, 3})
	assert.ErrorIs(t, err, errLink)
	p.Close()
	assert.NoError(t, p.Join(t.Context()))
}

var errLink = errors.New("link down")

type failing struct{}

func (failing) Remote() bool { return true }
func (failing) Terminate()   {}

func (failing) Work(_ int, q backend.Queue) {
	for t, ok := q.Next(); ok; t, ok = q.Next() {
		q.Started()
		q.Ended(t.Complete(backend.Reply{}, errLink))
	}
}

func TestConformancePoolOn(t *testing.T) {
	backendtest.TestPool(t, func(t *testing.T, workers int) *mp.Pool {
		return newLoopbackPool(t, workers, mp.NewPool(workers))
	})
}
