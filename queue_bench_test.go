package mp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
)

const (
	benchCap   = 128  // capacity of the bounded queues and of the channel they are measured against
	benchBatch = 1024 // items per benchmark iteration
)

// pipeline keeps producers and consumers running across iterations, so
// that an iteration measures items moving, not goroutines starting. Each
// batch, the producers put benchBatch items in all and the consumers get
// as many.
type pipeline struct {
	startP, startC chan struct{}
	done           chan struct{}
	wg             sync.WaitGroup
	p, c           int
}

func newPipeline(p, c int, put func(i int), get func()) *pipeline {
	pl := &pipeline{
		startP: make(chan struct{}, p),
		startC: make(chan struct{}, c),
		done:   make(chan struct{}, p+c),
		p:      p,
		c:      c,
	}
	for range p {
		pl.wg.Go(func() {
			for range pl.startP {
				for i := range benchBatch / p {
					put(i)
				}
				pl.done <- struct{}{}
			}
		})
	}
	for range c {
		pl.wg.Go(func() {
			for range pl.startC {
				for range benchBatch / c {
					get()
				}
				pl.done <- struct{}{}
			}
		})
	}
	return pl
}

// batch moves one batch and returns how long it took.
func (pl *pipeline) batch() time.Duration {
	start := time.Now()
	for range pl.p {
		pl.startP <- struct{}{}
	}
	for range pl.c {
		pl.startC <- struct{}{}
	}
	for range pl.p + pl.c {
		<-pl.done
	}
	return time.Since(start)
}

func (pl *pipeline) stop() {
	close(pl.startP)
	close(pl.startC)
	pl.wg.Wait()
}

// BenchmarkQueue moves items through a queue and, in the same iterations,
// through a buffered channel of the same capacity (the floor; with a ctx
// that can be done, the channel selects on it too), and reports both
// per-item costs and their ratio. Alternating the two within one run
// keeps the ratio honest on a busy machine.
func BenchmarkQueue(b *testing.B) {
	ctx := context.Background()
	plainChan := func() (func(int), func()) {
		ch := make(chan int, benchCap)
		return func(i int) { ch <- i }, func() { <-ch }
	}
	kinds := []struct {
		name  string
		make  func() (put func(int), get func())
		floor func() (put func(int), get func()) // nil: plainChan
	}{
		{"Queue", func() (func(int), func()) {
			q := mp.NewQueue[int](benchCap)
			return func(i int) { _ = q.Put(ctx, i) }, func() { _, _ = q.Get(ctx) }
		}, nil},
		{"JoinableQueue", func() (func(int), func()) {
			q := mp.NewJoinableQueue[int](benchCap)
			return func(i int) { _ = q.Put(ctx, i) }, func() { _, _ = q.Get(ctx); q.TaskDone() }
		}, nil},
		{"Queue/unbounded", func() (func(int), func()) {
			q := mp.NewQueue[int](0)
			return func(i int) { _ = q.Put(ctx, i) }, func() { _, _ = q.Get(ctx) }
		}, nil},
		{"Queue/timeout", func() (func(int), func()) {
			// A ctx that can be done makes blocked calls select on it.
			ctx, cancel := context.WithTimeout(ctx, time.Hour)
			b.Cleanup(cancel)
			q := mp.NewQueue[int](benchCap)
			return func(i int) { _ = q.Put(ctx, i) }, func() { _, _ = q.Get(ctx) }
		}, func() (func(int), func()) {
			// The floor is the channel idiom with the same ctx.
			ctx, cancel := context.WithTimeout(ctx, time.Hour)
			b.Cleanup(cancel)
			ch := make(chan int, benchCap)
			put := func(i int) {
				select {
				case ch <- i:
				case <-ctx.Done():
				}
			}
			get := func() {
				select {
				case <-ch:
				case <-ctx.Done():
				}
			}
			return put, get
		}},
		{"LIFOQueue", func() (func(int), func()) {
			q := mp.NewLIFOQueue[int](benchCap)
			return func(i int) { _ = q.Put(ctx, i) }, func() { _, _ = q.Get(ctx) }
		}, nil},
		{"PriorityQueue", func() (func(int), func()) {
			q := mp.NewPriorityQueue(benchCap, func(a, b int) bool { return a < b })
			return func(i int) { _ = q.Put(ctx, i) }, func() { _, _ = q.Get(ctx) }
		}, nil},
	}
	for _, pc := range [][2]int{{1, 1}, {4, 4}} {
		for _, kind := range kinds {
			b.Run(fmt.Sprintf("%dPx%dC/%s", pc[0], pc[1], kind.name), func(b *testing.B) {
				makeFloor := kind.floor
				if makeFloor == nil {
					makeFloor = plainChan
				}
				floorPut, floorGet := makeFloor()
				floor := newPipeline(pc[0], pc[1], floorPut, floorGet)
				defer floor.stop()
				put, get := kind.make()
				pl := newPipeline(pc[0], pc[1], put, get)
				defer pl.stop()

				var chanTime, queueTime time.Duration
				for b.Loop() {
					chanTime += floor.batch()
					queueTime += pl.batch()
				}
				items := float64(b.N * benchBatch)
				b.ReportMetric(float64(queueTime.Nanoseconds())/items, "ns/item")
				b.ReportMetric(float64(chanTime.Nanoseconds())/items, "chan-ns/item")
				b.ReportMetric(float64(queueTime)/float64(chanTime), "x-chan")
			})
		}
	}
}

// BenchmarkQueueUncontended is one goroutine putting and getting an item,
// against a non-blocking send and receive on a buffered channel.
func BenchmarkQueueUncontended(b *testing.B) {
	b.Run("Queue", func(b *testing.B) {
		q := mp.NewQueue[int](benchCap)
		for b.Loop() {
			_ = q.TryPut(1)
			_, _ = q.TryGet()
		}
	})
	b.Run("chan", func(b *testing.B) {
		ch := make(chan int, benchCap)
		for b.Loop() {
			select {
			case ch <- 1:
			default:
			}
			select {
			case <-ch:
			default:
			}
		}
	})
}
