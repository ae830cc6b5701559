package bench

import (
	"sync"
	"sync/atomic"
	"testing"
)

// queueShapes are the producer×consumer shapes of the queue workload.
var queueShapes = []struct {
	name       string
	prod, cons int
}{
	{"1P1C", 1, 1},
	{"4P4C", 4, 4},
}

// queueImpl moves n ints (0..n-1) from prod producers to cons consumers and
// returns, once every item has been consumed (and, for a joinable queue,
// marked done and joined), the sum of the items the consumers got.
type queueImpl struct {
	name string
	run  func(tb testing.TB, prod, cons, n int) int64
}

// queueImpls are the implementations of BenchmarkQueue. The floor is a
// buffered channel of the same capacity.
var queueImpls = []queueImpl{
	{"floor", func(_ testing.TB, prod, cons, n int) int64 {
		ch := make(chan int, queueCap)
		var consumers, producers sync.WaitGroup
		var sum atomic.Int64
		for range cons {
			consumers.Add(1)
			go func() {
				defer consumers.Done()
				local := 0
				for v := range ch {
					local += v
				}
				sum.Add(int64(local))
			}()
		}
		for p := range prod {
			producers.Add(1)
			go func() {
				defer producers.Done()
				for i := p; i < n; i += prod {
					ch <- i
				}
			}()
		}
		producers.Wait()
		close(ch)
		consumers.Wait()
		return sum.Load()
	}},
}

// BenchmarkQueue measures put, get and task_done of 100k small items:
// Python's queue.Queue between threads.
func BenchmarkQueue(b *testing.B) {
	for _, sh := range queueShapes {
		b.Run(sh.name, func(b *testing.B) {
			for _, q := range queueImpls {
				b.Run(q.name, func(b *testing.B) {
					var sum int64
					for b.Loop() {
						sum = q.run(b, sh.prod, sh.cons, queueItems)
					}
					reportPer(b, queueItems, "item")
					if want := int64(queueItems) * (queueItems - 1) / 2; sum != want {
						b.Fatalf("consumers got items summing to %d, want %d", sum, want)
					}
				})
			}
		})
	}
}
