package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitMarked waits until dir holds at least n files kind-i, failing t
// after hangGuard: the back-end never started the tasks.
func waitMarked(t *testing.T, dir, kind string, n int) map[int]bool {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		set, err := marked(dir, kind)
		require.NoError(t, err)
		if len(set) >= n {
			return set
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks marked %q after %v, want %d: the back-end does not run them", len(set), kind, hangGuard, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// allEnded fails t unless every task that left a start file in dir has
// also left its end file: the call that ran them waited for them.
func allEnded(t *testing.T, what, dir string) (started map[int]bool) {
	t.Helper()
	started, err := marked(dir, "start")
	require.NoError(t, err)
	ended, err := marked(dir, "end")
	require.NoError(t, err)
	for i := range started {
		if !ended[i] {
			t.Errorf("%s returned while item %d was still running", what, i)
		}
	}
	return started
}

// mapFailFast: the first error in time wins; Map waits for the tasks in
// flight, skips those not started, and returns the error with a nil
// slice.
func (s *suite) mapFailFast(t *testing.T) {
	const workers, n, bad = 2, 200, 3
	p := s.pool(t, workers)
	dir := t.TempDir()
	jobs := make([]job, n)
	for i := range jobs {
		jobs[i] = job{I: i, Dir: dir, Nap: 10 * time.Millisecond}
	}
	// Item 0 is still napping when item bad fails: it must see its
	// context cancelled, and its error come second.
	jobs[0].Nap = 300 * time.Millisecond
	jobs[bad].Nap, jobs[bad].Fail = 0, true
	got, err := within(t, "Map with a failing item", func() pair[[]span] {
		v, err := mp.Map(t.Context(), p, work, jobs, mp.ChunkSize(1))
		return pair[[]span]{v, err}
	}).unpack()
	require.Error(t, err, "Map with a failing item")
	assert.Nil(t, got, "Map's result on error")
	assert.True(t, mentions(err, failText(bad)), "Map returned %q, want the first error in time, %q", err, failText(bad))
	// Item 0's error, which wraps the cause it saw, came second.
	assert.False(t, mentions(err, "cancelled"), "Map returned %q, an error that came after the first", err)
	started := allEnded(t, "Map", dir)
	t.Logf("%d of %d items started before Map failed fast", len(started), n)
	// Without skipping, every item would start. Those before the failing
	// one may, and a few workers' worth of items in flight, queued or
	// pipelined when the error came.
	assert.LessOrEqual(t, len(started), bad+1+lookAheadBound(workers), "items started by a Map whose item %d failed at once, of %d", bad, n)

	// The same with Map's own chunking: the error, and no results.
	jobs = make([]job, n)
	for i := range jobs {
		jobs[i] = job{I: i, Fail: i == n/2}
	}
	got, err = within(t, "Map with chunks and a failing item", func() pair[[]span] {
		v, err := mp.Map(t.Context(), p, work, jobs)
		return pair[[]span]{v, err}
	}).unpack()
	assert.True(t, mentions(err, failText(n/2)), "Map returned %v, want %q", err, failText(n/2))
	assert.Nil(t, got, "Map's result on error")

	// The pool serves on, and the errors were collected by Map.
	v, err := within(t, "Apply after a failed Map", func() pair[int] {
		v, err := mp.Apply(t.Context(), p, square, 4)
		return pair[int]{v, err}
	}).unpack()
	require.NoError(t, err)
	assert.Equal(t, 16, v)
	assert.NoError(t, join(t, p), "Join after Maps that returned their errors")
}

// mapSeqGoesOn: MapSeq yields each item's error in its place and goes on.
func (s *suite) mapSeqGoesOn(t *testing.T) {
	const n, bad, panicky = 20, 3, 7
	p := s.pool(t, 2)
	jobs := make([]job, n)
	for i := range jobs {
		jobs[i] = job{I: i, Fail: i == bad, Panic: i == panicky}
	}
	for _, ordered := range []bool{true, false} {
		seq, name := mp.MapSeq(t.Context(), p, work, slices.Values(jobs)), "MapSeq"
		if !ordered {
			seq, name = mp.MapSeqUnordered(t.Context(), p, work, slices.Values(jobs)), "MapSeqUnordered"
		}
		type outcome struct {
			v   span
			err error
		}
		outs := within(t, name+" with failing items", func() []outcome {
			var outs []outcome
			for v, err := range seq {
				outs = append(outs, outcome{v, err})
			}
			return outs
		})
		require.Len(t, outs, n, "%s yields one outcome per item, errors included", name)
		var errs int
		var seen []int
		for k, o := range outs {
			switch {
			case o.err == nil:
				seen = append(seen, o.v.I)
				if ordered {
					assert.Equal(t, k, o.v.I, "%s: outcome %d", name, k)
				}
			case mentions(o.err, failText(bad)):
				errs++
				seen = append(seen, bad)
				if ordered {
					assert.Equal(t, bad, k, "%s: position of item %d's error", name, bad)
				}
			default:
				var pe *mp.PanicError
				if assert.ErrorAs(t, o.err, &pe, "%s: outcome %d", name, k) {
					assert.Contains(t, fmt.Sprint(pe.Value), panicText(panicky))
				}
				errs++
				seen = append(seen, panicky)
				if ordered {
					assert.Equal(t, panicky, k, "%s: position of item %d's panic", name, panicky)
				}
			}
		}
		assert.Equal(t, 2, errs, "%s: errors yielded", name)
		slices.Sort(seen)
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		sameSlice(t, name+": items seen", want, seen)
	}
	require.NoError(t, join(t, p), "Join after MapSeq yielded its errors")
}

// panics: a panic in a task becomes that task's *mp.PanicError, whose
// Value holds the panic's text, and the pool serves on.
func (s *suite) panics(t *testing.T) {
	p := s.pool(t, 2)
	ctx := t.Context()
	assertPanic := func(what string, err error, i int) {
		t.Helper()
		var pe *mp.PanicError
		if assert.ErrorAs(t, err, &pe, what) {
			assert.Contains(t, fmt.Sprint(pe.Value), panicText(i), "%s: PanicError.Value", what)
		}
	}
	_, err := get(t, "ApplyAsync of a panicking task", mp.ApplyAsync(ctx, p, work, job{I: 1, Panic: true}))
	assertPanic("ApplyAsync", err, 1)
	err = within(t, "Apply of a panicking task", func() error {
		_, err := mp.Apply(ctx, p, work, job{I: 2, Panic: true})
		return err
	})
	assertPanic("Apply", err, 2)
	jobs := make([]job, 50)
	for i := range jobs {
		jobs[i] = job{I: i, Panic: i == 30}
	}
	got, err := within(t, "Map with a panicking item", func() pair[[]span] {
		v, err := mp.Map(ctx, p, work, jobs)
		return pair[[]span]{v, err}
	}).unpack()
	assertPanic("Map", err, 30)
	assert.Nil(t, got, "Map's result on a panic")
	// Every worker lives on: more tasks than workers all succeed.
	items, want := squares(20)
	vals, err := within(t, "Map after panics", func() pair[[]int] {
		v, err := mp.Map(ctx, p, square, items, mp.ChunkSize(1))
		return pair[[]int]{v, err}
	}).unpack()
	require.NoError(t, err, "Map after panics")
	sameSlice(t, "Map after panics", want, vals)
	require.NoError(t, join(t, p))
}

// cancelBeforeStart: a task submitted with a context already done does
// not run and resolves with the context's cause.
func (s *suite) cancelBeforeStart(t *testing.T) {
	p := s.pool(t, 2)
	dir := t.TempDir()
	cause := errors.New("backendtest: caller gave up")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	_, err := get(t, "ApplyAsync with a cancelled ctx", mp.ApplyAsync(ctx, p, work, job{I: 1, Dir: dir}))
	assert.ErrorIs(t, err, cause, "ApplyAsync with a cancelled ctx")
	err = within(t, "Apply with a cancelled ctx", func() error {
		_, err := mp.Apply(ctx, p, work, job{I: 2, Dir: dir})
		return err
	})
	assert.ErrorIs(t, err, cause, "Apply with a cancelled ctx")
	got, err := within(t, "Map with a cancelled ctx", func() pair[[]span] {
		v, err := mp.Map(ctx, p, work, []job{{I: 3, Dir: dir}, {I: 4, Dir: dir}})
		return pair[[]span]{v, err}
	}).unpack()
	assert.ErrorIs(t, err, cause, "Map with a cancelled ctx")
	assert.Nil(t, got, "Map's result with a cancelled ctx")
	errs := within(t, "MapSeq with a cancelled ctx", func() []error {
		_, errs := collect(mp.MapSeq(ctx, p, work, slices.Values([]job{{I: 5, Dir: dir}, {I: 6, Dir: dir}})))
		return errs
	})
	require.NotEmpty(t, errs, "MapSeq with a cancelled ctx yields its cause")
	for k, err := range errs {
		assert.ErrorIs(t, err, cause, "MapSeq with a cancelled ctx, outcome %d", k)
	}
	started, err := marked(dir, "start")
	require.NoError(t, err)
	assert.Empty(t, started, "tasks run although their ctx was done before submission")
	require.NoError(t, join(t, p))
}

// cancelRunning: when a caller's context ends while its task runs, the
// task sees it and its result carries the cause. Get's own ctx bounds
// the wait only.
func (s *suite) cancelRunning(t *testing.T) {
	p := s.pool(t, 2)
	dir := t.TempDir()
	cause := errors.New("backendtest: caller gave up")
	ctx, cancel := context.WithCancelCause(t.Context())
	r := mp.ApplyAsync(ctx, p, work, job{I: 1, Dir: dir, Block: true})
	waitMarked(t, dir, "start", 1)
	cancel(cause)
	_, err := get(t, "ApplyAsync whose ctx ended while it ran", r)
	assert.ErrorIs(t, err, cause, "ApplyAsync whose ctx ended while it ran")

	ctx, cancel = context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := mp.Apply(ctx, p, work, job{I: 2, Dir: dir, Block: true})
		done <- err
	}()
	waitMarked(t, dir, "start", 2)
	cancel(cause)
	err = within(t, "Apply whose ctx ended while it ran", func() error { return <-done })
	assert.ErrorIs(t, err, cause, "Apply whose ctx ended while it ran")

	// A Get whose own ctx ends returns that ctx's cause; the task goes on
	// and its result can still be had.
	r2 := mp.ApplyAsync(t.Context(), p, work, job{I: 3, Dir: dir, Nap: 50 * time.Millisecond})
	getCause := errors.New("backendtest: Get gave up")
	gctx, gcancel := context.WithCancelCause(t.Context())
	gcancel(getCause)
	_, err = r2.Get(gctx)
	assert.ErrorIs(t, err, getCause, "Get with a cancelled ctx")
	v, err := get(t, "Get after a Get that gave up", r2)
	require.NoError(t, err, "the task goes on after a Get gives up")
	assert.Equal(t, 3, v.I)
	allEnded(t, "ApplyAsync", dir)
	require.NoError(t, join(t, p))
}

// mapCancel: Map whose ctx ends while its tasks run returns the cause,
// with a nil slice, once they have returned.
func (s *suite) mapCancel(t *testing.T) {
	p := s.pool(t, 2)
	dir := t.TempDir()
	cause := errors.New("backendtest: caller gave up")
	ctx, cancel := context.WithCancelCause(t.Context())
	jobs := make([]job, 10)
	for i := range jobs {
		jobs[i] = job{I: i, Dir: dir, Block: true}
	}
	done := make(chan pair[[]span], 1)
	go func() {
		v, err := mp.Map(ctx, p, work, jobs, mp.ChunkSize(1))
		done <- pair[[]span]{v, err}
	}()
	waitMarked(t, dir, "start", 1)
	cancel(cause)
	got, err := within(t, "Map whose ctx ended", func() pair[[]span] { return <-done }).unpack()
	assert.ErrorIs(t, err, cause, "Map whose ctx ended")
	assert.Nil(t, got, "Map's result when its ctx ended")
	allEnded(t, "Map whose ctx ended", dir)
	require.NoError(t, join(t, p))
}

// mapSeqCancel: MapSeq whose ctx ends yields the cause for the items
// outstanding and ends.
func (s *suite) mapSeqCancel(t *testing.T) {
	p := s.pool(t, 2)
	for _, ordered := range []bool{true, false} {
		dir := t.TempDir()
		cause := errors.New("backendtest: caller gave up")
		ctx, cancel := context.WithCancelCause(t.Context())
		jobs := make([]job, 10)
		for i := range jobs {
			jobs[i] = job{I: i, Dir: dir, Block: true}
		}
		seq, name := mp.MapSeq(ctx, p, work, slices.Values(jobs)), "MapSeq"
		if !ordered {
			seq, name = mp.MapSeqUnordered(ctx, p, work, slices.Values(jobs)), "MapSeqUnordered"
		}
		done := make(chan []error, 1)
		go func() {
			_, errs := collect(seq)
			done <- errs
		}()
		waitMarked(t, dir, "start", 1)
		cancel(cause)
		errs := within(t, name+" whose ctx ended", func() []error { return <-done })
		require.NotEmpty(t, errs, "%s whose ctx ended yields its cause", name)
		assert.LessOrEqual(t, len(errs), len(jobs), "%s yields at most one outcome per item", name)
		for k, err := range errs {
			assert.ErrorIs(t, err, cause, "%s whose ctx ended, outcome %d", name, k)
		}
		allEnded(t, name+" whose ctx ended", dir)
	}
	require.NoError(t, join(t, p))
}
