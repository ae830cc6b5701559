package bench

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	"github.com/sourcegraph/conc/iter"
	concpool "github.com/sourcegraph/conc/pool"
	"golang.org/x/sync/errgroup"
)

// submitImpl starts a pool of w workers, submits n copies of task, waits
// for all of them and releases the pool.
type submitImpl struct {
	name string
	run  func(tb testing.TB, w, n int, task func())
}

// submitImpls are the implementations of the submit+join and sleep
// workloads.
var submitImpls = []submitImpl{
	{"ants", func(tb testing.TB, w, n int, task func()) {
		p, err := ants.NewPool(w)
		if err != nil {
			tb.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(n)
		done := func() { task(); wg.Done() }
		for range n {
			if err := p.Submit(done); err != nil {
				tb.Fatal(err)
			}
		}
		wg.Wait()
		p.Release()
	}},
	{"pond", func(tb testing.TB, w, n int, task func()) {
		p := pond.NewPool(w)
		for range n {
			if err := p.Go(task); err != nil {
				tb.Fatal(err)
			}
		}
		p.StopAndWait()
	}},
	{"conc", func(_ testing.TB, w, n int, task func()) {
		p := concpool.New().WithMaxGoroutines(w)
		for range n {
			p.Go(task)
		}
		p.Wait()
	}},
	{"errgroup", func(tb testing.TB, w, n int, task func()) {
		var g errgroup.Group
		g.SetLimit(w)
		errTask := func() error { task(); return nil }
		for range n {
			g.Go(errTask)
		}
		if err := g.Wait(); err != nil {
			tb.Fatal(err)
		}
	}},
	{"floor", func(_ testing.TB, w, n int, task func()) {
		submitFloor(w, n, task)
	}},
}

// submitFloor is the least a pool can do: w goroutines ranging over a
// buffered channel of funcs.
func submitFloor(w, n int, task func()) {
	ch := make(chan func(), chanCap)
	var wg sync.WaitGroup
	wg.Add(w)
	for range w {
		go func() {
			defer wg.Done()
			for f := range ch {
				f()
			}
		}()
	}
	for range n {
		ch <- task
	}
	close(ch)
	wg.Wait()
}

// BenchmarkSubmitJoin measures submit+join of 1M trivial tasks: Python's
// ThreadPool.apply_async for each task, then close and join.
func BenchmarkSubmitJoin(b *testing.B) {
	for _, w := range submitWorkers {
		b.Run(workersName(w), func(b *testing.B) {
			for _, p := range submitImpls {
				b.Run(p.name, func(b *testing.B) {
					// With few workers the task counts itself, which proves
					// that every task ran; with a thousand the contention on
					// that counter would dominate, so there it is empty.
					var ran atomic.Int64
					task := func() { ran.Add(1) }
					if w > 2 {
						task = nop
					}
					for b.Loop() {
						p.run(b, w, submitTasks, task)
					}
					reportPer(b, submitTasks, "task")
					if w <= 2 && ran.Load() != int64(b.N)*submitTasks {
						b.Fatalf("ran %d tasks, want %d", ran.Load(), int64(b.N)*submitTasks)
					}
				})
			}
		})
	}
}

// BenchmarkSleep measures 10k tasks that each sleep 1 ms on 1000 workers,
// the shape of an I/O-bound job.
func BenchmarkSleep(b *testing.B) {
	sleep := func() { time.Sleep(sleepFor) }
	for _, p := range submitImpls {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				p.run(b, sleepWorkers, sleepTasks, sleep)
			}
			reportPer(b, sleepTasks, "task")
		})
	}
}

// BenchmarkFuture measures submit-with-future then wait for every future,
// on a long-lived pool of GOMAXPROCS workers: Python's apply_async + get.
func BenchmarkFuture(b *testing.B) { runImpls(b, futureImpls) }

// futureImpls are the implementations of BenchmarkFuture.
var futureImpls = []impl{
	{"pond", func(b *testing.B) {
		p := pond.NewResultPool[int](cores())
		defer p.StopAndWait()
		futures := make([]pond.ResultTask[int], futureTasks)
		out := make([]int, futureTasks)
		for b.Loop() {
			for i := range futures {
				futures[i] = p.Submit(func() int { return square(i) })
			}
			for i, f := range futures {
				v, err := f.Wait()
				if err != nil {
					b.Fatal(err)
				}
				out[i] = v
			}
		}
		reportPer(b, futureTasks, "task")
		checkSquares(b, out, futureTasks)
	}},
	{"floor", func(b *testing.B) {
		// GOMAXPROCS goroutines over a buffered channel of jobs, each job
		// answering on its own cap-1 channel.
		type job struct {
			x   int
			res chan int
		}
		jobs := make(chan job, chanCap)
		var wg sync.WaitGroup
		for range cores() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					j.res <- square(j.x)
				}
			}()
		}
		defer wg.Wait()
		defer close(jobs)
		futures := make([]chan int, futureTasks)
		out := make([]int, futureTasks)
		for b.Loop() {
			for i := range futures {
				futures[i] = make(chan int, 1)
				jobs <- job{i, futures[i]}
			}
			for i, f := range futures {
				out[i] = <-f
			}
		}
		reportPer(b, futureTasks, "task")
		checkSquares(b, out, futureTasks)
	}},
}

// BenchmarkMap measures an ordered parallel map of x*x over 1M ints:
// Python's Pool.map.
func BenchmarkMap(b *testing.B) { runImpls(b, mapImpls) }

// mapImpls are the implementations of BenchmarkMap.
var mapImpls = []impl{
	{"conc", func(b *testing.B) {
		in := inputs(mapItems)
		var out []int
		for b.Loop() {
			out = iter.Map(in, func(x *int) int { return square(*x) })
		}
		reportPer(b, mapItems, "item")
		checkSquares(b, out, mapItems)
	}},
	{"floor", func(b *testing.B) {
		in := inputs(mapItems)
		var out []int
		for b.Loop() {
			out = chunkedMap(in, square, cores())
		}
		reportPer(b, mapItems, "item")
		checkSquares(b, out, mapItems)
	}},
}

// chunkedMap is the floor of the ordered map: w goroutines claim chunks of
// Python's default size, ceil(len/(4w)), through an atomic counter and write
// their results in place.
func chunkedMap[A, R any](in []A, f func(A) R, w int) []R {
	out := make([]R, len(in))
	chunk := (len(in) + 4*w - 1) / (4 * w)
	if chunk == 0 {
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(w)
	for range w {
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= len(in) {
					return
				}
				hi := min(lo+chunk, len(in))
				for i := lo; i < hi; i++ {
					out[i] = f(in[i])
				}
			}
		}()
	}
	wg.Wait()
	return out
}
