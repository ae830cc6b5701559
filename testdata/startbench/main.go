// Command startbench times a Process from start to result to reaped, in a
// small program as users write them, against exec'ing and reaping the
// program named by -exec. It prints the two mean times in nanoseconds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/mpgo/mp"
)

func nop(_ context.Context, x int) (int, error) { return x, nil }

func init() { mp.Register(nop) }

func main() {
	mp.Main()
	n := flag.Int("n", 100, "number of runs")
	yardstick := flag.String("exec", "", "program to exec for comparison")
	gap := flag.Duration("gap", 0, "pause before each run, not timed: a process started now and then")
	flag.Parse()
	var proc, ex time.Duration
	for range *n {
		time.Sleep(*gap)
		start := time.Now()
		p := mp.NewProcess(nop, 1)
		if err := p.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := p.Join(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		proc += time.Since(start)

		start = time.Now()
		if err := exec.Command(*yardstick).Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ex += time.Since(start)
	}
	fmt.Println(proc.Nanoseconds()/int64(*n), ex.Nanoseconds()/int64(*n))
}
