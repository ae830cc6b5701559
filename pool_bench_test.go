package mp_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp"
)

// The benchmarks below come in pairs: "pool" measures mp, "floor" measures
// the hand-written code a careful programmer would write instead (workers
// ranging over a buffered channel, a cap-1 channel per future, a plain
// parallel loop). Every run thus yields the ratio pool/floor. Each reports
// ns/task and allocs/task besides the usual per-op figures, where one op is
// a whole batch of tasks.
//
//	go test -run '^$' -bench . -benchmem -count 6 . | tee bench.txt

const (
	trivialTasks = 1_000_000
	futureWindow = 1000 // futures in flight at once in the ApplyAsync benchmark
	ioTasks      = 10_000
)

// perTask runs body in b.Loop and reports time and allocations per task,
// where one call of body runs tasks tasks.
func perTask(b *testing.B, tasks int, body func()) {
	b.Helper()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		body()
		n++
	}
	runtime.ReadMemStats(&after)
	total := float64(n * tasks)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/task")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/task")
}

// floorWorkers is the hand-written pool: workers goroutines ranging over a
// buffered channel of functions, of the same capacity as mp's queue.
func floorWorkers(workers, tasks int, f func()) {
	ch := make(chan func(), max(1024, 4*workers))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for g := range ch {
				g()
			}
		})
	}
	for range tasks {
		ch <- f
	}
	close(ch)
	wg.Wait()
}

// BenchmarkGo submits and joins 1M trivial fire-and-forget tasks.
func BenchmarkGo(b *testing.B) {
	for _, workers := range []int{2, 1000} {
		b.Run(fmt.Sprintf("workers=%d/pool", workers), func(b *testing.B) {
			task := func(context.Context) error { return nil }
			perTask(b, trivialTasks, func() {
				p := mp.NewPool(workers)
				for range trivialTasks {
					_ = p.Go(task)
				}
				p.Close()
				_ = p.Join(context.Background())
			})
		})
		b.Run(fmt.Sprintf("workers=%d/floor", workers), func(b *testing.B) {
			perTask(b, trivialTasks, func() { floorWorkers(workers, trivialTasks, func() {}) })
		})
	}
}

// BenchmarkApplyAsync submits 1M tasks that return a value and gets every
// result, futureWindow futures in flight at a time. "pool" submits and
// waits with context.Background(), "pool-ctx" with b.Context(), which can
// be cancelled, as a request's context can.
func BenchmarkApplyAsync(b *testing.B) {
	const workers = 2
	applyAsync := func(b *testing.B, ctx context.Context) {
		futures := make([]*mp.AsyncResult[int], futureWindow)
		perTask(b, trivialTasks, func() {
			p := mp.NewPool(workers)
			sum := 0
			for range trivialTasks / futureWindow {
				for i := range futures {
					futures[i] = mp.ApplyAsync(ctx, p, square, i)
				}
				for _, f := range futures {
					v, _ := f.Get(ctx)
					sum += v
				}
			}
			p.Close()
			_ = p.Join(ctx)
			sink = sum
		})
	}
	b.Run("pool", func(b *testing.B) { applyAsync(b, context.Background()) })
	b.Run("pool-ctx", func(b *testing.B) { applyAsync(b, b.Context()) })
	b.Run("floor", func(b *testing.B) {
		futures := make([]chan int, futureWindow)
		perTask(b, trivialTasks, func() {
			ch := make(chan func(), 1024)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for g := range ch {
						g()
					}
				})
			}
			sum := 0
			for range trivialTasks / futureWindow {
				for i := range futures {
					f := make(chan int, 1)
					futures[i] = f
					ch <- func() { f <- i * i }
				}
				for _, f := range futures {
					sum += <-f
				}
			}
			close(ch)
			wg.Wait()
			sink = sum
		})
	})
}

var sink int

// BenchmarkMap squares 1M ints with an ordered Map on GOMAXPROCS workers.
func BenchmarkMap(b *testing.B) {
	items := make([]int, trivialTasks)
	for i := range items {
		items[i] = i
	}
	workers := runtime.GOMAXPROCS(0)
	b.Run("pool", func(b *testing.B) {
		p := mp.NewPool(workers)
		defer func() {
			p.Close()
			_ = p.Join(context.Background())
		}()
		perTask(b, len(items), func() {
			out, _ := mp.Map(context.Background(), p, square, items)
			sink = out[len(out)-1]
		})
	})
	b.Run("floor", func(b *testing.B) {
		perTask(b, len(items), func() {
			out := make([]int, len(items))
			var wg sync.WaitGroup
			size := (len(items) + workers - 1) / workers
			for lo := 0; lo < len(items); lo += size {
				wg.Go(func() {
					for i := lo; i < min(lo+size, len(items)); i++ {
						out[i], _ = square(context.Background(), items[i])
					}
				})
			}
			wg.Wait()
			sink = out[len(out)-1]
		})
	})
}

// BenchmarkIO runs 10k tasks that each sleep 1 ms on 1000 workers: the
// shape of the seed's thread pool over images.
func BenchmarkIO(b *testing.B) {
	const workers = 1000
	b.Run("pool", func(b *testing.B) {
		task := func(context.Context) error {
			time.Sleep(time.Millisecond)
			return nil
		}
		perTask(b, ioTasks, func() {
			p := mp.NewPool(workers)
			for range ioTasks {
				_ = p.Go(task)
			}
			p.Close()
			_ = p.Join(context.Background())
		})
	})
	b.Run("floor", func(b *testing.B) {
		perTask(b, ioTasks, func() { floorWorkers(workers, ioTasks, func() { time.Sleep(time.Millisecond) }) })
	})
}
