//go:build unix

package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/mpgo/mp"
)

// seqCalls is how many calls one run of BenchmarkProcPoolApplySeq makes,
// one after the other.
const seqCalls = 5000

// BenchmarkProcPoolApplySeq measures Apply called one at a time on a
// process pool of GOMAXPROCS workers, started and warmed before the
// clock: a full round trip to a worker per call, nothing to pipeline.
// Python's twin is Pool.apply in a loop. The floor is the least any call
// to another process costs: 32 bytes written over a socket pair to a Go
// child that echoes them, one round trip at a time.
func BenchmarkProcPoolApplySeq(b *testing.B) { runImpls(b, applySeqImpls) }

var applySeqImpls = []impl{
	{"mp", func(b *testing.B) {
		ctx := context.Background()
		p := mp.NewProcessPool(cores())
		defer closeAndJoin(b, p)
		if _, err := mp.Map(ctx, p, squareTask, inputs(64), mp.ChunkSize(1)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for i := range seqCalls {
				if v, err := mp.Apply(ctx, p, squareTask, i); err != nil || v != i*i {
					b.Fatalf("Apply(%d) = %d, %v", i, v, err)
				}
			}
		}
		reportPer(b, seqCalls, "task")
	}},
	{"floor", func(b *testing.B) {
		f := startEcho(b)
		buf := make([]byte, 32)
		for b.Loop() {
			for range seqCalls {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(f, buf); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportPer(b, seqCalls, "task")
	}},
}

// echoEnv makes the test binary, started with it, echo 32-byte messages
// on descriptor 3 instead of running tests (see serveEcho).
const echoEnv = "MP_BENCH_ECHO"

// serveEcho echoes 32-byte messages on descriptor 3, in blocking system
// calls, until it ends, then exits, if the binary was started to.
func serveEcho() {
	if os.Getenv(echoEnv) == "" {
		return
	}
	f := os.NewFile(3, "echo")
	buf := make([]byte, 32)
	for {
		if _, err := io.ReadFull(f, buf); err != nil {
			os.Exit(0)
		}
		if _, err := f.Write(buf); err != nil {
			os.Exit(0)
		}
	}
}

// startEcho starts the test binary as an echo child, with GOMAXPROCS=1 as
// a 2-core machine's pool workers have, and returns the parent's end of
// its socket pair, served by the runtime's poller as mp's are.
func startEcho(b *testing.B) *os.File {
	b.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	// Only the child is meant to have its end: a portable close-on-exec.
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		b.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "echo"), os.NewFile(uintptr(fds[1]), "echo-child")
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), echoEnv+"=1", "GOMAXPROCS=1")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	theirs.Close()
	b.Cleanup(func() {
		ours.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("echo child: %v", err)
		}
	})
	return ours
}
