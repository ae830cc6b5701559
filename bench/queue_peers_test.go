package bench

import (
	"sync"
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

// queueImpl moves queueItems ints from prod producers to cons consumers and
// returns when every item has been consumed (and, for a joinable queue,
// marked done and joined).
type queueImpl struct {
	name string
	run  func(b *testing.B, prod, cons int)
}

// queueImpls are the implementations of BenchmarkQueue. The floor is a
// buffered channel of the same capacity.
var queueImpls = []queueImpl{
	{"floor", func(_ *testing.B, prod, cons int) {
		ch := make(chan int, queueCap)
		var consumers, producers sync.WaitGroup
		for range cons {
			consumers.Add(1)
			go func() {
				defer consumers.Done()
				for range ch {
				}
			}()
		}
		for p := range prod {
			producers.Add(1)
			go func() {
				defer producers.Done()
				for i := p; i < queueItems; i += prod {
					ch <- i
				}
			}()
		}
		producers.Wait()
		close(ch)
		consumers.Wait()
	}},
}

// BenchmarkQueue measures put, get and task_done of 100k small items:
// Python's queue.Queue between threads.
func BenchmarkQueue(b *testing.B) {
	for _, sh := range queueShapes {
		b.Run(sh.name, func(b *testing.B) {
			for _, q := range queueImpls {
				b.Run(q.name, func(b *testing.B) {
					for b.Loop() {
						q.run(b, sh.prod, sh.cons)
					}
					reportPer(b, queueItems, "item")
				})
			}
		})
	}
}
