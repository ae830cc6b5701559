//go:build unix

package mp_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// touch creates the file path: a task whose running leaves a trace.
var touch = mp.Register(func(_ context.Context, path string) (struct{}, error) {
	return struct{}{}, os.WriteFile(path, nil, 0o644)
})

// strayToken is the MP_CHILD_TOKEN of the stray marker tests.
const strayToken = "0123456789abcdef0123456789abcdef"

// socketPeer returns one end of a new socket pair, for the test, and the
// other, to become a child's fd 3; the test closes both at its end.
func socketPeer(t *testing.T) (peer, fd3 *os.File) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	peer, fd3 = os.NewFile(uintptr(fds[0]), "peer"), os.NewFile(uintptr(fds[1]), "fd3")
	t.Cleanup(func() { peer.Close(); fd3.Close() })
	return peer, fd3
}

// TestMainStrayMarker runs this test binary with mp's child markers in its
// environment but no mp parent on fd 3: Main must refuse at once with a
// message, and run no task, whatever fd 3 is.
func TestMainStrayMarker(t *testing.T) {
	type setup struct {
		fd3 *os.File // nil: fd 3 is not open
		sh  bool     // start the binary through a shell, which becomes its parent
	}
	tests := []struct {
		name   string
		reason string // a regular expression
		setup  func(t *testing.T, request []byte) setup
	}{
		// With nothing passed as fd 3, the runtime may take it for a file
		// of its own (on Linux, the cgroup's CPU limit).
		{"no fd 3", "fd 3 is not (open|a socket)", func(t *testing.T, _ []byte) setup {
			return setup{}
		}},
		{"regular file", "fd 3 is not a socket", func(t *testing.T, request []byte) setup {
			f, err := os.CreateTemp(t.TempDir(), "fd3")
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			_, err = f.Write(append([]byte(strayToken), request...))
			require.NoError(t, err)
			_, err = f.Seek(0, 0)
			require.NoError(t, err)
			return setup{fd3: f}
		}},
		{"pipe that never delivers", "fd 3 is not a socket", func(t *testing.T, _ []byte) setup {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			t.Cleanup(func() { r.Close(); w.Close() }) // the writer stays open until then
			return setup{fd3: r}
		}},
		{"socket that never delivers", "fd 3 had nothing to read", func(t *testing.T, _ []byte) setup {
			_, fd3 := socketPeer(t)
			return setup{fd3: fd3}
		}},
		{"socket at end of file", "did not send this process's token", func(t *testing.T, _ []byte) setup {
			peer, fd3 := socketPeer(t)
			require.NoError(t, peer.Close())
			return setup{fd3: fd3}
		}},
		{"socket that sends a request without the token", "did not send this process's token", func(t *testing.T, request []byte) setup {
			peer, fd3 := socketPeer(t)
			_, err := peer.Write(request)
			require.NoError(t, err)
			return setup{fd3: fd3}
		}},
		{"socket that sends the token but is not the parent's", "not this process's parent", func(t *testing.T, request []byte) setup {
			if runtime.GOOS != "linux" {
				t.Skip("only Linux checks who made the socket")
			}
			peer, fd3 := socketPeer(t)
			_, err := peer.Write(append([]byte(strayToken), request...))
			require.NoError(t, err)
			return setup{fd3: fd3, sh: true}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := filepath.Join(t.TempDir(), "task-ran")
			request, err := mp.RunRequestFrame(touch, ran)
			require.NoError(t, err)
			s := tt.setup(t, request)
			code, stderr := runStray(t, s.fd3, s.sh)
			assert.Equal(t, 70, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, "mp: MP_CHILD_TOKEN is set in the environment, but no mp parent is on fd 3")
			assert.Regexp(t, tt.reason, stderr)
			assert.Contains(t, stderr, "unset MP_CHILD_TOKEN, MP_CHILD_NAME and MP_CHILD_MODE")
			assert.NoFileExists(t, ran, "no registered task ran")
		})
	}

	// The same harness with a socket that plays the parent's part in full
	// does run the task: the refusals above are the check's doing.
	t.Run("the parent's socket", func(t *testing.T) {
		ran := filepath.Join(t.TempDir(), "task-ran")
		request, err := mp.RunRequestFrame(touch, ran)
		require.NoError(t, err)
		peer, fd3 := socketPeer(t)
		_, err = peer.Write(append([]byte(strayToken), request...))
		require.NoError(t, err)
		code, stderr := runStray(t, fd3, false)
		assert.Zero(t, code, "stderr: %s", stderr)
		assert.FileExists(t, ran)
	})
}

// runStray runs this test binary, running no test, with mp's child markers
// in its environment and fd3 as its fd 3, and returns its exit code and
// stderr. It fails the test if the binary is still running after a few
// seconds: a stray fd 3 must never make Main wait.
func runStray(t *testing.T, fd3 *os.File, sh bool) (int, string) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	args := []string{os.Args[0], "-test.run=^$"}
	if sh {
		// Not the last command, so that the shell forks rather than execs.
		args = append([]string{"/bin/sh", "-c", `"$0" "$@"; exit $?`}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MP_CHILD_TOKEN="+strayToken, "MP_CHILD_NAME=stray", "MP_CHILD_MODE=process")
	if _, set := os.LookupEnv("GORACE"); !set {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	if fd3 != nil {
		cmd.ExtraFiles = []*os.File{fd3}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "the binary did not exit within 5s; stdout: %s, stderr: %s", &stdout, &stderr)
	if !errors.As(err, new(*exec.ExitError)) {
		require.NoError(t, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}
