package mp_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/mpgo/mp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(sinkEnv) != "" {
		os.Exit(runSink())
	}
	mp.Main()
	goleak.VerifyTestMain(m)
}

// sinkEnv makes this test binary, re-executed, run runSink instead of
// the tests.
const sinkEnv = "MP_TEST_SINK"

// runSink reads stdin into one reused 1 MiB buffer until end of file and
// prints the number of bytes read: the child of the floor of
// BenchmarkXQueueLarge, a reader that costs nothing but the copy out of
// the socket.
func runSink() int {
	buf := make([]byte, 1<<20)
	total := 0
	for {
		n, err := os.Stdin.Read(buf)
		total += n
		if err != nil {
			fmt.Println(total)
			return 0
		}
	}
}
