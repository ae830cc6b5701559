package main

import (
	"fmt"
	"math"
)

// Workload describes one workload: its key (the Go benchmark's name
// without the implementation), what it measures, and the performance bars
// the issues set for mp on it.
type Workload struct {
	Key   string
	Title string // short, for the table and the chart
	Unit  string // what one operation is: task, item, process
	Bars  []Bar
}

// BarKind is the shape of a performance bar.
type BarKind int

// The kinds of bars.
const (
	MaxOverFloor  BarKind = iota // mp/floor ≤ Limit
	MinPythonOver                // Python/mp ≥ Limit
	MaxNs                        // mp ≤ Limit ns per operation
	MaxAllocs                    // mp ≤ Limit allocations per operation
)

// Bar is one performance bar from the issues.
type Bar struct {
	Kind  BarKind
	Limit float64
}

// String renders the bar as the issues state it.
func (b Bar) String() string {
	switch b.Kind {
	case MaxOverFloor:
		return fmt.Sprintf("mp ≤ %g× floor", b.Limit)
	case MinPythonOver:
		return fmt.Sprintf("mp ≥ %g× faster than Python", b.Limit)
	case MaxAllocs:
		return fmt.Sprintf("mp ≤ %g allocs/op", b.Limit)
	default:
		return "mp ≤ " + fmtNs(b.Limit)
	}
}

// Eval returns the measured figure the bar is about and whether it is met;
// ok is false when a side it needs was not measured.
func (b Bar) Eval(r Row) (got float64, met, ok bool) {
	switch b.Kind {
	case MaxOverFloor:
		got = ratio(r.MP, r.Floor)
		return got, got <= b.Limit, !math.IsNaN(got)
	case MinPythonOver:
		got = ratio(r.Python, r.MP)
		return got, got >= b.Limit, !math.IsNaN(got)
	case MaxAllocs:
		if r.MP == nil || r.MP.Allocs < 0 {
			return math.NaN(), false, false
		}
		// What a batch allocates once is spread over its tasks, so "N allocs
		// per task" is met up to the same amortized slack as zeroAllocs.
		return r.MP.Allocs, r.MP.Allocs <= b.Limit+zeroAllocs, true
	default:
		if r.MP == nil {
			return math.NaN(), false, false
		}
		return r.MP.Ns, r.MP.Ns <= b.Limit, true
	}
}

// zeroAllocs is the bar for "0 allocs per task, amortized", and the slack
// of every allocation bar: what a batch allocates once (the pool, the output
// slice) spread over its tasks stays far below it, one allocation per
// hundred tasks does not.
const zeroAllocs = 0.01

// catalogue lists the workloads in the order of the report. Its keys match
// the benchmarks of package bench and the RESULT lines of python/.
var catalogue = []Workload{
	{Key: "SubmitJoin/workers=2", Title: "submit+join 1M trivial tasks, 2 workers", Unit: "task",
		Bars: []Bar{{MaxOverFloor, 1.5}, {MaxAllocs, zeroAllocs}}},
	{Key: "SubmitJoin/workers=1000", Title: "submit+join 1M trivial tasks, 1000 workers", Unit: "task",
		Bars: []Bar{{MaxOverFloor, 1.5}, {MaxAllocs, zeroAllocs}}},
	{Key: "Future", Title: "ApplyAsync+Get (futures), GOMAXPROCS workers", Unit: "task",
		Bars: []Bar{{MaxOverFloor, 1.25}, {MaxAllocs, 1}}},
	{Key: "Map", Title: "ordered Map of x*x over 1M ints", Unit: "item",
		Bars: []Bar{{MaxNs, 6.5}, {MaxAllocs, zeroAllocs}}},
	{Key: "Sleep", Title: "10k × 1 ms sleeps, 1000 workers", Unit: "task",
		Bars: []Bar{{MaxOverFloor, 1.05}}},
	{Key: "Queue/1P1C", Title: "JoinableQueue put/get/task_done, 1 producer 1 consumer", Unit: "item",
		Bars: []Bar{{MaxOverFloor, 1.5}, {MaxAllocs, zeroAllocs}}},
	{Key: "Queue/4P4C", Title: "JoinableQueue put/get/task_done, 4 producers 4 consumers", Unit: "item",
		Bars: []Bar{{MaxOverFloor, 1.5}, {MaxAllocs, zeroAllocs}}},
	{Key: "ProcessStart", Title: "process start → result → reaped", Unit: "process",
		Bars: []Bar{{MaxOverFloor, 1.5}}},
	{Key: "ProcessStartSpaced", Title: "process started every 20 ms: start → result → reaped", Unit: "process",
		Bars: []Bar{{MaxNs, 500_000}, {MinPythonOver, 5}}},
	{Key: "ProcPoolApply", Title: "process pool ApplyAsync+Get", Unit: "task",
		Bars: []Bar{{MaxNs, 3300}, {MinPythonOver, 10}}},
	{Key: "ProcPoolApplySeq", Title: "process pool Apply, one call at a time", Unit: "task",
		Bars: []Bar{{MaxOverFloor, 1.5}, {MinPythonOver, 4}}},
	{Key: "ProcPoolMap/auto", Title: "process pool Map 100k, automatic chunks", Unit: "item",
		Bars: []Bar{{MinPythonOver, 1}}},
	{Key: "ProcPoolMap/chunk=1", Title: "process pool Map 100k, chunk size 1", Unit: "item",
		Bars: []Bar{{MinPythonOver, 10}}},
	{Key: "XQueue", Title: "cross-process JoinableQueue, 100k small items", Unit: "item",
		Bars: []Bar{{MinPythonOver, 5}}},
	{Key: "XQueueBytes", Title: "cross-process Queue, 1000 × 1 MiB", Unit: "item",
		Bars: []Bar{{MaxOverFloor, 2}}},
	{Key: "XQueueLarge/bytes", Title: "cross-process JoinableQueue(16), 1000 × 1 MiB []byte", Unit: "item",
		Bars: []Bar{{MaxOverFloor, 1.25}}},
	{Key: "XQueueLarge/struct", Title: "cross-process JoinableQueue(16), 1000 × struct{Seq; 1 MiB Data}", Unit: "item",
		Bars: []Bar{{MaxOverFloor, 2}}},
	{Key: "Lock", Title: "Lock+Unlock, uncontended, in the owner", Unit: "lock",
		Bars: []Bar{{MaxOverFloor, 2}}},
	{Key: "LockChild", Title: "Lock+Unlock, uncontended, in a child (one round trip)", Unit: "lock"},
	{Key: "ValueAdd", Title: "Value.Add on an int64 in shared memory", Unit: "add",
		Bars: []Bar{{MaxOverFloor, 1.5}}},
}
