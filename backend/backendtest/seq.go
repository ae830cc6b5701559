package backendtest

import (
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lookAheadBound is the most items MapSeq may have read beyond those it
// yielded, on a pool of workers workers. MapSeq documents 2×workers
// items queued or running, plus the one in hand; the bound leaves room
// for a back-end that keeps a little more in flight, while an input read
// whole, or far ahead, fails it.
func lookAheadBound(workers int) int { return 4*workers + 4 }

// counted returns a sequence of f(0), …, f(n-1) that counts in pulled
// how many items were read from it.
func counted[A any](n int, pulled *atomic.Int64, f func(i int) A) iter.Seq[A] {
	return func(yield func(A) bool) {
		for i := range n {
			pulled.Add(1)
			if !yield(f(i)) {
				return
			}
		}
	}
}

// mapSeqLookAhead: MapSeq and MapSeqUnordered read their input a bounded
// distance ahead of the loop, even when the loop is slow.
func (s *suite) mapSeqLookAhead(t *testing.T) {
	const workers, n = 2, 500
	p := s.pool(t, workers)
	for _, ordered := range []bool{true, false} {
		var pulled atomic.Int64
		items := counted(n, &pulled, func(i int) int { return i })
		seq, name := mp.MapSeq(t.Context(), p, square, items), "MapSeq"
		if !ordered {
			seq, name = mp.MapSeqUnordered(t.Context(), p, square, items), "MapSeqUnordered"
		}
		type outcome struct {
			vals     []int
			err      error
			maxAhead int64
		}
		o := within(t, name, func() (o outcome) {
			for v, err := range seq {
				if err != nil && o.err == nil {
					o.err = err
				}
				o.vals = append(o.vals, v)
				o.maxAhead = max(o.maxAhead, pulled.Load()-int64(len(o.vals)))
				if len(o.vals) == 1 {
					// A slow loop gives a back-end that reads ahead without
					// bound the time to show it; the bound holds whatever
					// the timing.
					time.Sleep(50 * time.Millisecond)
				}
			}
			return o
		})
		require.NoError(t, o.err, name)
		assert.LessOrEqual(t, o.maxAhead, int64(lookAheadBound(workers)), "%s on %d workers: most items read ahead of the loop", name, workers)
		assert.Equal(t, int64(n), pulled.Load(), "%s: items read", name)
		if ordered {
			_, want := squares(n)
			sameSlice(t, name, want, o.vals)
		} else {
			assert.Len(t, o.vals, n, name)
		}
	}
	require.NoError(t, join(t, p))
}

// mapSeqBreak: breaking out of MapSeq, or panicking in its loop, cancels
// the tasks outstanding and waits for them, stops reading the input, and
// reports none of their errors.
func (s *suite) mapSeqBreak(t *testing.T) {
	const workers, n = 2, 1000
	p := s.pool(t, workers)
	for _, c := range []struct {
		ordered, panics bool
	}{{true, false}, {false, false}, {true, true}, {false, true}} {
		dir := t.TempDir()
		var pulled atomic.Int64
		// Item 0 returns; the others wait for their ctx, which only the
		// break can end.
		items := counted(n, &pulled, func(i int) job { return job{I: i, Dir: dir, Block: i > 0} })
		seq, name := mp.MapSeq(t.Context(), p, work, items), "MapSeq"
		if !c.ordered {
			seq, name = mp.MapSeqUnordered(t.Context(), p, work, items), "MapSeqUnordered"
		}
		how := "break"
		if c.panics {
			how = "panic"
		}
		const loopPanic = "backendtest: loop body panicked"
		type outcome struct {
			first     span
			err       error
			recovered any
		}
		o := within(t, name+" left by a "+how, func() (o outcome) {
			defer func() { o.recovered = recover() }()
			for v, err := range seq {
				o.first, o.err = v, err
				if c.panics {
					panic(loopPanic)
				}
				break
			}
			return o
		})
		what := fmt.Sprintf("%s left by a %s", name, how)
		require.NoError(t, o.err, "%s: first outcome", what)
		assert.Equal(t, 0, o.first.I, "%s: the first outcome is the item that returns", what)
		if c.panics {
			assert.Equal(t, loopPanic, o.recovered, "%s: the loop's panic goes on up", what)
		}
		assert.LessOrEqual(t, pulled.Load(), int64(lookAheadBound(workers)+1), "%s: items read", what)
		allEnded(t, what, dir)
	}
	assert.NoError(t, join(t, p), "Join after loops that stopped listening reports nothing")
}
