package mp

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWaitPidfd checks both answers of waitPidfd: true once a child of
// ours has exited, and false at once when the kernel cannot wait on the
// pidfd, here because the process is not our child, so that the caller
// falls back to the blocking wait rather than take the error for an exit.
func TestWaitPidfd(t *testing.T) {
	assert.False(t, waitPidfd(os.Getppid()), "not our child")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// Under -race the child would otherwise pause a second at exit.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	require.NoError(t, cmd.Start())
	assert.True(t, waitPidfd(cmd.Process.Pid))
	require.NoError(t, cmd.Wait(), "waitPidfd left the child to be reaped")
}
