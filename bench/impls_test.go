package bench

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// The tests below run every implementation on small inputs, so that a
// benchmark never times an implementation that does less than the others.

func TestSubmitImplsRunEveryTask(t *testing.T) {
	for _, im := range submitImpls {
		for _, w := range []int{1, 3, 100} {
			t.Run(im.name+"/"+workersName(w), func(t *testing.T) {
				const n = 5000
				var ran atomic.Int64
				im.run(t, w, n, func() { ran.Add(1) })
				if got := ran.Load(); got != n {
					t.Fatalf("ran %d tasks, want %d", got, n)
				}
			})
		}
	}
}

func TestQueueImplsDeliverEveryItem(t *testing.T) {
	for _, im := range queueImpls {
		for _, sh := range queueShapes {
			t.Run(im.name+"/"+sh.name, func(t *testing.T) {
				const n = 10_000
				if got, want := im.run(t, sh.prod, sh.cons, n), int64(n*(n-1)/2); got != want {
					t.Fatalf("consumers got items summing to %d, want %d", got, want)
				}
			})
		}
	}
}

func TestChunkedMap(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000, 1001} {
		for _, w := range []int{1, 2, 5} {
			t.Run(strconv.Itoa(n)+"/"+strconv.Itoa(w), func(t *testing.T) {
				out := chunkedMap(inputs(n), square, w)
				if len(out) != n {
					t.Fatalf("got %d results, want %d", len(out), n)
				}
				for i, v := range out {
					if v != i*i {
						t.Fatalf("out[%d] = %d, want %d", i, v, i*i)
					}
				}
			})
		}
	}
}
