//go:build unix

package bench

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkProcessStart measures starting a child process, getting its
// result and reaping it: Python's Process(target=f).start(); join().
func BenchmarkProcessStart(b *testing.B) { runImpls(b, processStartImpls) }

// processStartImpls are the implementations of BenchmarkProcessStart. The
// floor execs a minimal static Go binary and waits for it.
var processStartImpls = []impl{
	{"floor", func(b *testing.B) {
		bin := buildMinimalBinary(b)
		for b.Loop() {
			if err := exec.Command(bin).Run(); err != nil {
				b.Fatal(err)
			}
		}
		reportPer(b, 1, "process")
	}},
}

// buildMinimalBinary builds a static Go program whose main returns at once
// and returns its path. Building costs about a second and stays out of the
// timed loop.
func buildMinimalBinary(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "minimal")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the minimal binary: %v\n%s", err, out)
	}
	return bin
}

// bigItems items of bigItemSize bytes make the bulk workload of the
// cross-process queue: 1000 × 1 MiB.
const (
	bigItems    = 1000
	bigItemSize = 1 << 20
)

// BenchmarkXQueueBytes measures 1000 × 1 MiB []byte items sent to another
// process: Python's multiprocessing.Queue with bytes items.
func BenchmarkXQueueBytes(b *testing.B) { runImpls(b, xqueueBytesImpls) }

// xqueueBytesImpls are the implementations of BenchmarkXQueueBytes. The
// floor is the raw bandwidth of an AF_UNIX socketpair, the transport a
// child's connection uses: length-prefixed frames written by one goroutine
// and read in full by another.
var xqueueBytesImpls = []impl{
	{"floor", func(b *testing.B) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		w := os.NewFile(uintptr(fds[0]), "w")
		r := os.NewFile(uintptr(fds[1]), "r")
		defer w.Close()
		defer r.Close()
		item := make([]byte, bigItemSize)
		buf := make([]byte, bigItemSize)
		b.SetBytes(bigItems * bigItemSize)
		for b.Loop() {
			errc := make(chan error, 1)
			go func() {
				var hdr [8]byte
				for range bigItems {
					binary.LittleEndian.PutUint64(hdr[:], uint64(len(item)))
					if _, err := w.Write(hdr[:]); err != nil {
						errc <- err
						return
					}
					if _, err := w.Write(item); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			var hdr [8]byte
			for range bigItems {
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf[:binary.LittleEndian.Uint64(hdr[:])]); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		}
		reportPer(b, bigItems, "item")
	}},
}
