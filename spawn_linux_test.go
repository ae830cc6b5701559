package mp_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// threads returns how many threads this process has.
func threads(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestWaitingForChildrenHoldsNoThreads checks that the goroutines waiting
// for running children wait in the runtime's poller on pidfds, not each
// in a system call on a thread of its own.
func TestWaitingForChildrenHoldsNoThreads(t *testing.T) {
	const n = 24
	before := threads(t)
	procs := make([]*mp.Process[struct{}], n)
	for i := range procs {
		procs[i] = mp.NewProcess(napUntilCancelled, time.Hour)
		require.NoError(t, procs[i].Start())
	}
	defer func() {
		for _, p := range procs {
			require.NoError(t, p.Kill())
			var ee *mp.ExitError
			require.ErrorAs(t, p.Join(t.Context()), &ee)
		}
	}()
	assert.Less(t, threads(t), before+n/2, "%d children waited for", n)
}
