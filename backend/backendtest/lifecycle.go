package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closeRunsQueued: tasks submitted before Close still run, and Join
// waits for them.
func (s *suite) closeRunsQueued(t *testing.T) {
	p := s.pool(t, 2)
	rs := make([]*mp.AsyncResult[span], 12)
	for i := range rs {
		rs[i] = mp.ApplyAsync(t.Context(), p, work, job{I: i, Nap: 5 * time.Millisecond})
	}
	p.Close()
	for i, r := range rs {
		v, err := get(t, fmt.Sprintf("task %d submitted before Close", i), r)
		require.NoError(t, err, "task %d submitted before Close", i)
		assert.Equal(t, i, v.I, "result of task %d", i)
	}
	require.NoError(t, join(t, p))
}

// closedRefuses: after Close or Terminate, every way of submitting
// returns mp.ErrClosed, and nothing hangs.
func (s *suite) closedRefuses(t *testing.T) {
	for _, stop := range []struct {
		name string
		stop func(*mp.Pool)
	}{
		{"Close", (*mp.Pool).Close},
		{"Terminate", (*mp.Pool).Terminate},
	} {
		p := s.pool(t, 2)
		stop.stop(p)
		after := " after " + stop.name
		ctx := t.Context()
		_, err := get(t, "ApplyAsync"+after, mp.ApplyAsync(ctx, p, square, 1))
		assert.ErrorIs(t, err, mp.ErrClosed, "ApplyAsync"+after)
		err = within(t, "Apply"+after, func() error {
			_, err := mp.Apply(ctx, p, square, 2)
			return err
		})
		assert.ErrorIs(t, err, mp.ErrClosed, "Apply"+after)
		got, err := within(t, "Map"+after, func() pair[[]int] {
			v, err := mp.Map(ctx, p, square, []int{1, 2, 3})
			return pair[[]int]{v, err}
		}).unpack()
		assert.ErrorIs(t, err, mp.ErrClosed, "Map"+after)
		assert.Nil(t, got, "Map's result"+after)
		for _, ordered := range []bool{true, false} {
			seq, name := mp.MapSeq(ctx, p, square, slices.Values([]int{1, 2, 3})), "MapSeq"
			if !ordered {
				seq, name = mp.MapSeqUnordered(ctx, p, square, slices.Values([]int{1, 2, 3})), "MapSeqUnordered"
			}
			errs := within(t, name+after, func() []error {
				_, errs := collect(seq)
				return errs
			})
			require.NotEmpty(t, errs, "%s%s yields ErrClosed", name, after)
			for k, err := range errs {
				assert.ErrorIs(t, err, mp.ErrClosed, "%s%s, outcome %d", name, after, k)
			}
		}
		err = p.Join(guardCtx(t))
		require.NotErrorIs(t, err, errHang, "Join"+after)
		assert.NoError(t, err, "Join"+after+", every ErrClosed having been collected")
	}
}

// joinBeforeClose: Join on a pool that was neither closed nor
// terminated panics with an "mp:" message instead of waiting for ever.
func (s *suite) joinBeforeClose(t *testing.T) {
	p := s.pool(t, 2)
	_, err := get(t, "ApplyAsync(square)", mp.ApplyAsync(t.Context(), p, square, 3))
	require.NoError(t, err)
	// A done ctx makes a Join that wrongly waits return at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	msg, panicked := panicMessage(func() { _ = p.Join(ctx) })
	require.True(t, panicked, "Join before Close or Terminate must panic")
	assert.True(t, strings.HasPrefix(msg, "mp: "), "Join's panic %q must start with \"mp: \"", msg)
}

// joinReportsUncollected: Join returns the errors of results nobody
// collected, once, and not those a caller received.
func (s *suite) joinReportsUncollected(t *testing.T) {
	p := s.pool(t, 2)
	ctx := t.Context()
	left1 := mp.ApplyAsync(ctx, p, work, job{I: 1, Fail: true})
	left2 := mp.ApplyAsync(ctx, p, work, job{I: 2, Panic: true})
	taken := mp.ApplyAsync(ctx, p, work, job{I: 3, Fail: true})
	called := make(chan error, 1)
	mp.ApplyAsync(ctx, p, work, job{I: 4, Fail: true}).Then(func(_ span, err error) { called <- err })
	ok := mp.ApplyAsync(ctx, p, work, job{I: 5})
	_, err := within(t, "Map with a failing item", func() pair[[]span] {
		v, err := mp.Map(ctx, p, work, []job{{I: 6, Fail: true}, {I: 7}})
		return pair[[]span]{v, err}
	}).unpack()
	assert.True(t, mentions(err, failText(6)), "Map returned %v, want %q", err, failText(6))
	_, err = get(t, "a failing task", taken)
	assert.True(t, mentions(err, failText(3)), "Get returned %v, want %q", err, failText(3))
	_, err = get(t, "a succeeding task", ok)
	require.NoError(t, err)
	for _, r := range []*mp.AsyncResult[span]{left1, left2} {
		select {
		case <-r.Done():
		case <-guardCtx(t).Done():
			t.Fatalf("Done not closed within %v", hangGuard)
		}
	}
	err = within(t, "Then callback", func() error { return <-called })
	assert.True(t, mentions(err, failText(4)), "Then got %v, want %q", err, failText(4))

	err = join(t, p)
	assert.True(t, mentions(err, failText(1)), "Join returned %v, want it to report the uncollected %q", err, failText(1))
	assert.True(t, mentions(err, panicText(2)), "Join returned %v, want it to report the uncollected panic %q", err, panicText(2))
	var pe *mp.PanicError
	assert.ErrorAs(t, err, &pe, "Join reports an uncollected panic as a *mp.PanicError")
	for _, i := range []int{3, 4, 6} {
		assert.False(t, mentions(err, failText(i)), "Join reported %q, which a caller collected", failText(i))
	}
	assert.NoError(t, p.Join(guardCtx(t)), "a second Join repeats nothing")
}

// then: a callback runs once with the task's result, also when the task
// had ended before Then; a panic in it is reported by Join and stalls
// nothing.
func (s *suite) then(t *testing.T) {
	p := s.pool(t, 2)
	ctx := t.Context()
	type call struct {
		v   int
		err error
	}
	var calls [3]atomic.Int32
	got := make(chan call, 3)
	cb := func(k int) func(int, error) {
		return func(v int, err error) {
			calls[k].Add(1)
			got <- call{v, err}
		}
	}
	mp.ApplyAsync(ctx, p, square, 6).Then(cb(0))
	c := within(t, "Then callback", func() call { return <-got })
	assert.Equal(t, call{36, nil}, c, "Then on a pending result")

	r := mp.ApplyAsync(ctx, p, square, 7)
	_, err := get(t, "ApplyAsync(square, 7)", r)
	require.NoError(t, err)
	r.Then(cb(1))
	c = within(t, "Then callback on an ended task", func() call { return <-got })
	assert.Equal(t, call{49, nil}, c, "Then on an ended result")

	failing := mp.ApplyAsync(ctx, p, work, job{I: 1, Fail: true})
	failing.Then(func(_ span, err error) {
		calls[2].Add(1)
		got <- call{0, err}
	})
	c = within(t, "Then callback on a failing task", func() call { return <-got })
	assert.True(t, mentions(c.err, failText(1)), "Then got %v, want %q", c.err, failText(1))

	const cbPanic = "backendtest: callback panicked"
	mp.ApplyAsync(ctx, p, square, 8).Then(func(int, error) { panic(cbPanic) })
	// A bad callback stalls nothing: more tasks than workers still run.
	items, want := squares(10)
	vals, err := within(t, "Map after a panicking callback", func() pair[[]int] {
		v, err := mp.Map(ctx, p, square, items, mp.ChunkSize(1))
		return pair[[]int]{v, err}
	}).unpack()
	require.NoError(t, err)
	sameSlice(t, "Map after a panicking callback", want, vals)

	err = join(t, p)
	var pe *mp.PanicError
	if assert.ErrorAs(t, err, &pe, "Join reports a callback's panic") {
		assert.Contains(t, fmt.Sprint(pe.Value), cbPanic)
	}
	assert.False(t, mentions(err, failText(1)), "Join reported %q, which a callback received", failText(1))
	for k := range calls {
		assert.Equal(t, int32(1), calls[k].Load(), "calls of callback %d", k)
	}
}

// terminate: Terminate resolves every pending result, running or queued,
// with mp.ErrTerminated, and queued tasks do not run.
func (s *suite) terminate(t *testing.T) {
	const workers, queued = 2, 20
	p := s.pool(t, workers)
	dir := t.TempDir()
	ctx := t.Context()
	rs := make([]*mp.AsyncResult[span], workers+queued)
	for i := range rs {
		rs[i] = mp.ApplyAsync(ctx, p, work, job{I: i, Dir: dir, Block: true})
		if i == workers-1 {
			waitMarked(t, dir, "start", workers)
		}
	}
	var called atomic.Int32
	thenErr := make(chan error, 1)
	rs[len(rs)-1].Then(func(_ span, err error) {
		called.Add(1)
		thenErr <- err
	})
	p.Terminate()
	for i, r := range rs {
		// A running task keeps its own return value on a back-end that
		// cannot preempt it; it saw its ctx end with cause ErrTerminated,
		// and wraps it.
		_, err := get(t, fmt.Sprintf("task %d after Terminate", i), r)
		assert.ErrorIs(t, err, mp.ErrTerminated, "task %d after Terminate", i)
		assert.True(t, r.Ready(), "Ready of task %d after its Get", i)
	}
	err := within(t, "Then callback after Terminate", func() error { return <-thenErr })
	assert.ErrorIs(t, err, mp.ErrTerminated, "Then after Terminate")
	_, err = get(t, "ApplyAsync after Terminate", mp.ApplyAsync(ctx, p, square, 1))
	assert.ErrorIs(t, err, mp.ErrClosed, "ApplyAsync after Terminate")
	err = p.Join(guardCtx(t))
	require.NotErrorIs(t, err, errHang, "Join after Terminate")
	assert.NoError(t, err, "Join after Terminate, every result having been collected")
	started, err := marked(dir, "start")
	require.NoError(t, err)
	for i := workers; i < len(rs); i++ {
		assert.False(t, started[i], "task %d was queued at Terminate, and ran", i)
	}
	assert.Equal(t, int32(1), called.Load(), "calls of the callback")
}

// terminateMap: a Map or MapSeq under way when the pool is terminated
// returns, or yields, mp.ErrTerminated.
func (s *suite) terminateMap(t *testing.T) {
	p := s.pool(t, 2)
	dir := t.TempDir()
	jobs := func(base int) []job {
		js := make([]job, 10)
		for i := range js {
			js[i] = job{I: base + i, Dir: dir, Block: true}
		}
		return js
	}
	mapped := make(chan pair[[]span], 1)
	go func() {
		v, err := mp.Map(t.Context(), p, work, jobs(0), mp.ChunkSize(1))
		mapped <- pair[[]span]{v, err}
	}()
	streamed := make(chan []error, 1)
	go func() {
		_, errs := collect(mp.MapSeq(t.Context(), p, work, slices.Values(jobs(100))))
		streamed <- errs
	}()
	waitMarked(t, dir, "start", 1)
	p.Terminate()
	got, err := within(t, "Map under way at Terminate", func() pair[[]span] { return <-mapped }).unpack()
	assert.ErrorIs(t, err, mp.ErrTerminated, "Map under way at Terminate")
	assert.Nil(t, got, "Map's result after Terminate")
	errs := within(t, "MapSeq under way at Terminate", func() []error { return <-streamed })
	require.NotEmpty(t, errs, "MapSeq under way at Terminate")
	for k, err := range errs {
		// The item being submitted when the pool stopped taking tasks
		// yields ErrClosed, as every submission after Terminate does, and
		// ends the sequence.
		if k == len(errs)-1 && errors.Is(err, mp.ErrClosed) {
			continue
		}
		assert.ErrorIs(t, err, mp.ErrTerminated, "MapSeq under way at Terminate, outcome %d of %d", k, len(errs))
	}
	err = p.Join(guardCtx(t))
	require.NotErrorIs(t, err, errHang, "Join after Terminate")
}
