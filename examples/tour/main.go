// Command tour runs the Go twin of every idiom of the seed document, in
// process, in a few seconds: the main demo of mp.
//
//	go run ./examples/tour
//
// Each idiom is one entry of the idioms table; the per-idiom programs in
// examples/ run the same functions on their own.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

// idiom is one section of the seed document and its Go twin.
type idiom struct {
	title string
	run   func(ctx context.Context, w io.Writer) error
}

var idioms = []idiom{
	{"§1 os.getpid(), in the parent and in a child process", seed.PID},
	{"§2 threading.Thread ×2, start, join", seed.Threads},
	{"§3 ThreadPoolExecutor(4).map: 20 images × 100 ms, Python's shape", func(ctx context.Context, w io.Writer) error {
		return images(ctx, w, 20, 4, 5)
	}},
	{"§3 the same job at Go scale: 10 000 images × 100 ms on 1000 workers", func(ctx context.Context, w io.Writer) error {
		fmt.Fprintln(w, "(Python's 4 threads would need 250 s)")
		return images(ctx, w, 10000, 1000, 3)
	}},
	{"§4 Pool(8).map(test, range(100)), close, join", seed.PoolMap},
	{"§5 Pool(8).apply_async ×100, close, join", seed.ApplyAsync},
	{"§6 Pool(8).apply ×100, close, join", seed.Apply},
	{"§4 on worker processes: multiprocessing.Pool(8).map(test, range(100))", seed.ProcessPoolMap},
	{"§5 on worker processes: Pool(8).apply_async ×100", seed.ProcessPoolApplyAsync},
	{"§6 on worker processes: Pool(8).apply ×100", seed.ProcessPoolApply},
	{"§3' Process(target=run_proc, args=('test',)), start, join", seed.Process},
	{"§7 JoinableQueue: producer and a consumer goroutine, task_done, join", seed.ProducerConsumer},
	{"§7 JoinableQueue with a consumer process, put ×5, join", func(ctx context.Context, w io.Writer) error {
		return seed.JoinableQueueProcess(ctx, w, 20*time.Millisecond)
	}},
	{"§8 Queue shared by a writer and a reader process, reader terminated", func(ctx context.Context, w io.Writer) error {
		code, err := seed.SharedQueueProcesses(ctx, 20*time.Millisecond)
		fmt.Fprintf(w, "reader terminated, exit code %d\n", code)
		return err
	}},
	{"Lock + Value counter, Barrier between phases, SharedMemory filled by 4 processes", seed.Shared},
}

func images(ctx context.Context, w io.Writer, n, workers, show int) error {
	start := time.Now()
	done, err := seed.ProcessImages(ctx, w, n, workers, 100*time.Millisecond, show)
	fmt.Fprintf(w, "... processed %d images with %d workers in %v\n",
		done, workers, time.Since(start).Round(10*time.Millisecond))
	return err
}

func main() {
	mp.Main()
	ctx := context.Background()
	start := time.Now()
	for _, id := range idioms {
		fmt.Printf("\n=== %s\n", id.title)
		if err := id.run(ctx, os.Stdout); err != nil {
			log.Fatalf("%s: %v", id.title, err)
		}
	}
	fmt.Printf("\n=== tour done in %v\n", time.Since(start).Round(10*time.Millisecond))
}
