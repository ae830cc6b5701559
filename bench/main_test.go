package bench

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/mpgo/mp"
	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as the floor's child of
// BenchmarkXQueueLarge and as mp's child processes, then checks
// that no benchmark or test leaks a goroutine. The two ants goroutines it
// ignores belong to the default pool that package ants starts in its own
// init, which no benchmark here uses or can stop.
func TestMain(m *testing.M) {
	mp.Main()
	if os.Getenv(sinkEnv) != "" {
		os.Exit(runSink())
	}
	serveEcho()
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

// sinkEnv makes this test binary, re-executed, run runSink instead of
// the benchmarks.
const sinkEnv = "MP_BENCH_SINK"

// runSink reads stdin into one reused 1 MiB buffer until end of file and
// prints the number of bytes read: the child of BenchmarkXQueueLarge's
// floors.
func runSink() int {
	buf := make([]byte, 1<<20)
	total := 0
	for {
		n, err := io.ReadFull(os.Stdin, buf)
		total += n
		if err != nil {
			fmt.Println(total)
			return 0
		}
	}
}
