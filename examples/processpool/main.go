// Command processpool is the Go twin of the seed's §4–§6 on worker
// processes, as Python's multiprocessing.Pool runs them: Pool(8).map over
// range(100), 100 apply_async, and 100 apply, each followed by close and
// join. The task is registered at package level (in package seed), and
// mp.Main() comes first in main, the Go twin of the __main__ guard: each
// worker is this program started again.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	ctx := context.Background()
	for _, step := range []struct {
		title string
		run   func(context.Context, *os.File) error
	}{
		{"§4 Pool(8).map(test, range(100))", func(ctx context.Context, w *os.File) error { return seed.ProcessPoolMap(ctx, w) }},
		{"§5 Pool(8).apply_async ×100", func(ctx context.Context, w *os.File) error { return seed.ProcessPoolApplyAsync(ctx, w) }},
		{"§6 Pool(8).apply ×100", func(ctx context.Context, w *os.File) error { return seed.ProcessPoolApply(ctx, w) }},
	} {
		fmt.Printf("=== %s on worker processes\n", step.title)
		if err := step.run(ctx, os.Stdout); err != nil {
			log.Fatalf("%s: %v", step.title, err)
		}
	}
}
