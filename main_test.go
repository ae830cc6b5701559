package mp_test

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/mpgo/mp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	mp.Main()
	if os.Getenv(sinkEnv) != "" {
		os.Exit(runSink())
	}
	serveFloor()
	goleak.VerifyTestMain(m)
}

// sinkEnv makes this test binary, re-executed, run runSink instead of
// the tests.
const sinkEnv = "MP_TEST_SINK"

// runSink reads stdin in 1 MiB pieces until end of file and prints the
// number of bytes read: the child of the floors of BenchmarkXQueueLarge.
// With sinkEnv=fresh every piece is read in full into a slice of its own,
// as a receiver that hands each item to its program must; otherwise into
// one reused buffer, which costs nothing but the copy out of the socket.
func runSink() int {
	fresh := os.Getenv(sinkEnv) == "fresh"
	buf := make([]byte, 1<<20)
	total := 0
	for {
		if fresh {
			buf = make([]byte, 1<<20)
		}
		n, err := io.ReadFull(os.Stdin, buf)
		total += n
		if err != nil {
			fmt.Println(total)
			return 0
		}
		sinkSlice = buf
	}
}

// sinkSlice keeps the compiler from proving runSink's slices dead.
var sinkSlice []byte
