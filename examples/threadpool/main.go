// Command threadpool is the Go twin of the seed's §3: a thread pool that
// "processes" 10 000 images, each standing for 100 ms of I/O.
//
// Python's ThreadPoolExecutor(max_workers=4) needs 10 000 × 100 ms / 4 =
// 250 s for it. Goroutines are cheap enough to use 1000 workers, which
// finish in about 10 000 × 100 ms / 1000 = 1 s:
//
//	go run ./examples/threadpool                     # 1000 workers, about 1 s
//	go run ./examples/threadpool -workers 4 -n 100   # Python's shape, smaller
//	go run ./examples/threadpool -show 10000         # every line, as Python prints
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	n := flag.Int("n", 10000, "number of images")
	workers := flag.Int("workers", 1000, "number of pool workers")
	sleep := flag.Duration("sleep", 100*time.Millisecond, "simulated I/O per image")
	show := flag.Int("show", 5, "print Python's line for the first `k` images")
	flag.Parse()

	start := time.Now()
	done, err := seed.ProcessImages(context.Background(), os.Stdout, *n, *workers, *sleep, *show)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("processed %d images × %v with %d workers in %v\n",
		done, *sleep, *workers, time.Since(start).Round(10*time.Millisecond))
}
