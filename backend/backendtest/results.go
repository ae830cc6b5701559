package backendtest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// workers: the pool has the workers it was made with.
func (s *suite) workers(t *testing.T) {
	for _, n := range []int{1, 3} {
		p := s.pool(t, n)
		assert.Equal(t, n, p.Workers(), "Workers of a pool of %d", n)
		assert.Equal(t, n, p.Stats().Workers, "Stats().Workers of a pool of %d", n)
	}
}

// applyAsync: a result resolves once with the task's value, Done and
// Ready agree with it, and Get may be called again.
func (s *suite) applyAsync(t *testing.T) {
	p := s.pool(t, 2)
	ctx := t.Context()
	r := mp.ApplyAsync(ctx, p, square, 7)
	select {
	case <-r.Done():
	case <-guardCtx(t).Done():
		t.Fatalf("Done of ApplyAsync(square, 7) not closed within %v", hangGuard)
	}
	assert.True(t, r.Ready(), "Ready after Done is closed")
	for range 2 {
		v, err := get(t, "ApplyAsync(square, 7)", r)
		require.NoError(t, err)
		assert.Equal(t, 49, v)
	}
	v, err := within(t, "Apply(square, 9)", func() pair[int] {
		v, err := mp.Apply(ctx, p, square, 9)
		return pair[int]{v, err}
	}).unpack()
	require.NoError(t, err)
	assert.Equal(t, 81, v)

	// Many results submitted at once resolve each with its own value.
	rs := make([]*mp.AsyncResult[int], 300)
	for i := range rs {
		rs[i] = mp.ApplyAsync(ctx, p, square, i)
	}
	items, want := squares(len(rs))
	got := make([]int, len(items))
	for i, r := range rs {
		v, err := get(t, fmt.Sprintf("ApplyAsync(square, %d)", i), r)
		require.NoError(t, err, "ApplyAsync(square, %d)", i)
		got[i] = v
	}
	sameSlice(t, "ApplyAsync results", want, got)
	require.NoError(t, join(t, p))
}

// pair is a value and an error, as a function returns them, for within.
type pair[T any] struct {
	v   T
	err error
}

func (p pair[T]) unpack() (T, error) { return p.v, p.err }

// mapOrder: Map returns the results in the order of the items, whatever
// the chunking.
func (s *suite) mapOrder(t *testing.T) {
	p := s.pool(t, 3)
	ctx := t.Context()
	items, want := squares(1000)
	for _, c := range []struct {
		name string
		opts []mp.MapOption
	}{
		{"default chunks", nil},
		{"ChunkSize(1)", []mp.MapOption{mp.ChunkSize(1)}},
		{"ChunkSize(7)", []mp.MapOption{mp.ChunkSize(7)}},
		{"ChunkSize(5000)", []mp.MapOption{mp.ChunkSize(5000)}},
	} {
		got, err := within(t, "Map with "+c.name, func() pair[[]int] {
			v, err := mp.Map(ctx, p, square, items, c.opts...)
			return pair[[]int]{v, err}
		}).unpack()
		require.NoError(t, err, "Map with %s", c.name)
		sameSlice(t, "Map with "+c.name, want, got)
	}
	got, err := within(t, "Map of no items", func() pair[[]int] {
		v, err := mp.Map(ctx, p, square, nil)
		return pair[[]int]{v, err}
	}).unpack()
	require.NoError(t, err, "Map of no items")
	assert.NotNil(t, got, "Map of no items returns an empty slice, not nil")
	assert.Empty(t, got, "Map of no items")
	require.NoError(t, join(t, p))
}

// collect ranges over seq and returns what it yielded.
func collect[R any](seq func(func(R, error) bool)) (vals []R, errs []error) {
	for v, err := range seq {
		vals, errs = append(vals, v), append(errs, err)
	}
	return vals, errs
}

// mapSeqOrder: MapSeq yields one result per item, in the order of the
// items.
func (s *suite) mapSeqOrder(t *testing.T) {
	p := s.pool(t, 3)
	items, want := squares(1000)
	got := within(t, "ranging over MapSeq", func() pair[[]int] {
		vals, errs := collect(mp.MapSeq(t.Context(), p, square, slices.Values(items)))
		for i, err := range errs {
			if err != nil {
				return pair[[]int]{nil, fmt.Errorf("item %d: %w", i, err)}
			}
		}
		return pair[[]int]{vals, nil}
	})
	require.NoError(t, got.err, "MapSeq")
	sameSlice(t, "MapSeq results", want, got.v)

	// The sequence may be ranged over again, and runs the tasks again.
	again := within(t, "ranging over MapSeq again", func() []int {
		vals, _ := collect(mp.MapSeq(t.Context(), p, square, slices.Values(items[:10])))
		return vals
	})
	sameSlice(t, "MapSeq ranged over again", want[:10], again)
	require.NoError(t, join(t, p))
}

// mapSeqUnorderedOnce: MapSeqUnordered yields each item's result exactly
// once, in some order.
func (s *suite) mapSeqUnorderedOnce(t *testing.T) {
	p := s.pool(t, 3)
	items, want := squares(1000)
	got := within(t, "ranging over MapSeqUnordered", func() pair[[]int] {
		vals, errs := collect(mp.MapSeqUnordered(t.Context(), p, square, slices.Values(items)))
		for _, err := range errs {
			if err != nil {
				return pair[[]int]{nil, err}
			}
		}
		return pair[[]int]{vals, nil}
	})
	require.NoError(t, got.err, "MapSeqUnordered")
	// The squares of distinct naturals are distinct and sorted like them,
	// so each result exactly once means the sorted results are want.
	slices.Sort(got.v)
	sameSlice(t, "MapSeqUnordered results, sorted", want, got.v)
	require.NoError(t, join(t, p))
}

// atMostN: however tasks are submitted, and from however many goroutines,
// no more than the pool's workers run at once. Each task naps long enough
// that a back-end running one too many would overlap them; the check is
// on the intervals the tasks report, not on how long anything took.
func (s *suite) atMostN(t *testing.T) {
	const workers, perWay = 2, 8
	const nap = 20 * time.Millisecond
	p := s.pool(t, workers)
	ctx := t.Context()
	jobs := func(base int) []job {
		js := make([]job, perWay)
		for i := range js {
			js[i] = job{I: base + i, Nap: nap}
		}
		return js
	}
	ways := []struct {
		name string
		run  func(js []job) ([]span, error)
	}{
		{"ApplyAsync", func(js []job) ([]span, error) {
			rs := make([]*mp.AsyncResult[span], len(js))
			for i, j := range js {
				rs[i] = mp.ApplyAsync(ctx, p, work, j)
			}
			out := make([]span, len(rs))
			for i, r := range rs {
				v, err := r.Get(ctx)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		}},
		{"Map ChunkSize(1)", func(js []job) ([]span, error) {
			return mp.Map(ctx, p, work, js, mp.ChunkSize(1))
		}},
		{"Map", func(js []job) ([]span, error) {
			return mp.Map(ctx, p, work, js)
		}},
		{"MapSeq", func(js []job) ([]span, error) {
			return collectOK(mp.MapSeq(ctx, p, work, slices.Values(js)))
		}},
		{"MapSeqUnordered", func(js []job) ([]span, error) {
			return collectOK(mp.MapSeqUnordered(ctx, p, work, slices.Values(js)))
		}},
	}
	// First each way alone, then all at once from goroutines of their own.
	for k, w := range ways {
		spans, err := within(t, w.name, func() pair[[]span] {
			v, err := w.run(jobs(k * perWay))
			return pair[[]span]{v, err}
		}).unpack()
		require.NoError(t, err, w.name)
		require.Len(t, spans, perWay, w.name)
		assert.LessOrEqual(t, maxOverlap(spans), workers, "%s: tasks running at once on a pool of %d", w.name, workers)
	}
	all, err := within(t, "all ways at once", func() pair[[]span] {
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			all   []span
			first error
		)
		for k, w := range ways {
			wg.Go(func() {
				v, err := w.run(jobs(k * perWay))
				mu.Lock()
				defer mu.Unlock()
				all = append(all, v...)
				if first == nil && err != nil {
					first = fmt.Errorf("%s: %w", w.name, err)
				}
			})
		}
		wg.Wait()
		return pair[[]span]{all, first}
	}).unpack()
	require.NoError(t, err)
	require.Len(t, all, perWay*len(ways))
	assert.LessOrEqual(t, maxOverlap(all), workers, "tasks running at once on a pool of %d, submitted from %d goroutines", workers, len(ways))
	require.NoError(t, join(t, p))
}

// collectOK ranges over seq and returns its values, or the first error.
func collectOK[R any](seq func(func(R, error) bool)) ([]R, error) {
	vals, errs := collect(seq)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return vals, nil
}
