//go:build unix

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/mpgo/mp"
)

// The tasks that run in child processes are registered at package level.
func init() {
	mp.Register(squareTask)
	mp.Register(consumeInts)
	mp.Register(consumeBytes)
}

// Sizes of the process-pool workloads (Python's figures are per task too).
const (
	procFutureTasks = 10_000
	procMapItems    = 100_000
	xqueueItems     = 100_000
)

// mp's Process (NewProcess, Start, Join, Result) in BenchmarkProcessStart,
// and its Queue ([]byte items handed to a child) in BenchmarkXQueueBytes.
func init() {
	processStartImpls = append([]impl{{"mp", func(b *testing.B) {
		ctx := b.Context()
		for b.Loop() {
			p := mp.NewProcess(squareTask, 3)
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			if err := p.Join(ctx); err != nil {
				b.Fatal(err)
			}
			if v, err := p.Result(); err != nil || v != 9 {
				b.Fatalf("Result() = %d, %v; want 9, nil", v, err)
			}
		}
		reportPer(b, 1, "process")
	}}}, processStartImpls...)

	xqueueBytesImpls = append([]impl{{"mp", func(b *testing.B) {
		ctx := b.Context()
		item := make([]byte, bigItemSize)
		b.SetBytes(bigItems * bigItemSize)
		for b.Loop() {
			q := mp.NewQueue[[]byte](16)
			p := mp.NewProcess(consumeBytes, bytesArg{Q: q, N: bigItems})
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			for range bigItems {
				if err := q.Put(ctx, item); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Join(ctx); err != nil {
				b.Fatal(err)
			}
			if n, err := p.Result(); err != nil || n != bigItems*bigItemSize {
				b.Fatalf("child read %d bytes, %v; want %d", n, err, bigItems*bigItemSize)
			}
		}
		reportPer(b, bigItems, "item")
	}}}, xqueueBytesImpls...)
}

// BenchmarkProcessStartSpaced measures a Process started now and then,
// 20 ms apart, as a server that starts a child per request does: only
// Start, Join and Result are timed, not the gap. Python's twin is
// python/process.py's "Process start+join spaced 20 ms (fork)".
func BenchmarkProcessStartSpaced(b *testing.B) {
	b.Run("mp", func(b *testing.B) {
		ctx := b.Context()
		for b.Loop() {
			b.StopTimer()
			time.Sleep(20 * time.Millisecond)
			b.StartTimer()
			p := mp.NewProcess(squareTask, 3)
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			if err := p.Join(ctx); err != nil {
				b.Fatal(err)
			}
			if v, err := p.Result(); err != nil || v != 9 {
				b.Fatalf("Result() = %d, %v; want 9, nil", v, err)
			}
		}
		reportPer(b, 1, "process")
	})
}

// BenchmarkProcPoolApply measures ApplyAsync then Get for 10k trivial tasks
// on a process pool of GOMAXPROCS workers: Python's Pool.apply_async + get.
func BenchmarkProcPoolApply(b *testing.B) {
	b.Run("mp", func(b *testing.B) {
		benchFutures(b, mp.NewProcessPool(cores()), procFutureTasks)
	})
}

// BenchmarkProcPoolMap measures an ordered Map of x*x over 100k ints on a
// process pool, with automatic chunking and with chunks of one item:
// Python's Pool.map with its default chunksize and with chunksize=1.
func BenchmarkProcPoolMap(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []mp.MapOption
	}{
		{"auto", nil},
		{"chunk=1", []mp.MapOption{mp.ChunkSize(1)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.Run("mp", func(b *testing.B) {
				ctx := b.Context()
				p := mp.NewProcessPool(cores())
				defer closeAndJoin(b, p)
				in := inputs(procMapItems)
				var out []int
				for b.Loop() {
					var err error
					if out, err = mp.Map(ctx, p, squareTask, in, c.opts...); err != nil {
						b.Fatal(err)
					}
				}
				reportPer(b, procMapItems, "item")
				checkSquares(b, out, procMapItems)
			})
		})
	}
}

// BenchmarkXQueue measures 100k small items put by the parent into a
// JoinableQueue and consumed, with TaskDone, by a child process; the parent
// then joins the queue and the child: Python's JoinableQueue between a
// parent and a Process.
func BenchmarkXQueue(b *testing.B) {
	b.Run("mp", func(b *testing.B) {
		ctx := b.Context()
		for b.Loop() {
			q := mp.NewJoinableQueue[int](0)
			p := mp.NewProcess(consumeInts, intsArg{Q: q, N: xqueueItems})
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			for i := range xqueueItems {
				if err := q.Put(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Join(ctx); err != nil {
				b.Fatal(err)
			}
			if err := p.Join(ctx); err != nil {
				b.Fatal(err)
			}
			if sum, err := p.Result(); err != nil || sum != xqueueItems*(xqueueItems-1)/2 {
				b.Fatalf("child summed %d, %v; want %d", sum, err, xqueueItems*(xqueueItems-1)/2)
			}
		}
		reportPer(b, xqueueItems, "item")
	})
}

// intsArg hands a queue of ints and the number of items to read to a child.
type intsArg struct {
	Q *mp.JoinableQueue[int]
	N int
}

// consumeInts gets a.N items, marking each done, and returns their sum.
func consumeInts(ctx context.Context, a intsArg) (int, error) {
	sum := 0
	for range a.N {
		v, err := a.Q.Get(ctx)
		if err != nil {
			return sum, err
		}
		sum += v
		a.Q.TaskDone()
	}
	return sum, nil
}

// bytesArg hands a queue of byte slices and the number of items to a child.
type bytesArg struct {
	Q *mp.Queue[[]byte]
	N int
}

// consumeBytes gets a.N items and returns how many bytes they held.
func consumeBytes(ctx context.Context, a bytesArg) (int, error) {
	n := 0
	for range a.N {
		v, err := a.Q.Get(ctx)
		if err != nil {
			return n, err
		}
		n += len(v)
	}
	return n, nil
}
