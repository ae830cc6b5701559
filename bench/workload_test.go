package bench

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The sizes of the workloads. Each b.Loop iteration runs one whole batch, so
// a benchmark's ns/op is the cost of the batch and its ns/task metric the
// cost of one task; the runner compares ns/task.
const (
	// submitTasks is the batch of the submit+join workload: a fresh pool,
	// submitTasks trivial tasks, then wait for all of them. One million
	// tasks make the pool's start and stop cost negligible.
	submitTasks = 1_000_000

	// futureTasks is the batch of the future workload: submit futureTasks
	// tasks to a long-lived pool, keeping a future for each, then wait for
	// every future in order. Small enough that a million futures are never
	// alive at once.
	futureTasks = 10_000

	// mapItems is the length of the slice of the ordered map workload.
	mapItems = 1_000_000

	// sleepTasks tasks of sleepFor each run on sleepWorkers workers: the
	// shape of an I/O-bound job, whose floor is sleepTasks/sleepWorkers
	// rounds of sleepFor.
	sleepTasks   = 10_000
	sleepWorkers = 1000
	sleepFor     = time.Millisecond

	// queueItems items go through a queue of capacity queueCap per batch.
	queueItems = 100_000
	queueCap   = 1024

	// chanCap is the capacity of the buffered channel of the submit floor.
	chanCap = 1024
)

// submitWorkers are the worker counts of the submit+join workload: as many
// workers as cores, and the thousand workers of an I/O-bound service.
var submitWorkers = []int{2, 1000}

// workersName names a sub-benchmark after a worker count.
func workersName(n int) string { return "workers=" + strconv.Itoa(n) }

// cores is the default size of the long-lived pools (Python's default too).
func cores() int { return runtime.GOMAXPROCS(0) }

// reportPer reports the cost of one of the batch units that each iteration
// of b.Loop ran, as ns/<unit>. Call it after the loop has ended.
func reportPer(b *testing.B, batch int, unit string) {
	b.Helper()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(batch), "ns/"+unit)
}

// nop is the trivial task of the submit workloads, a shared func value so
// that submitting it allocates nothing on the caller's side.
var nop = func() {}

// square is the task of the map and future workloads.
func square(x int) int { return x * x }

// inputs returns 0..n-1.
func inputs(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// checkSquares fails b unless out holds the squares of 0..len(out)-1, so
// that no implementation is timed doing less than the others.
func checkSquares(b *testing.B, out []int, n int) {
	b.Helper()
	if len(out) != n {
		b.Fatalf("got %d results, want %d", len(out), n)
	}
	for i, v := range out {
		if v != i*i {
			b.Fatalf("out[%d] = %d, want %d", i, v, i*i)
		}
	}
}

// impl is one implementation of a workload, run as the sub-benchmark name.
// The mp_*_test.go files add mp's in init.
type impl struct {
	name string
	run  func(b *testing.B)
}

// runImpls runs each implementation as a sub-benchmark.
func runImpls(b *testing.B, impls []impl) {
	for _, im := range impls {
		b.Run(im.name, im.run)
	}
}
