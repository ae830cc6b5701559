//go:build unix

package mp_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mpgo/mp"
)

// buildStaticHello builds the smallest Go program, statically linked, as
// the yardstick for starting a process.
func buildStaticHello(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := "package main\n\nfunc main() {}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.25\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the yardstick: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkProcessStartSmallProgram is the official start-up figure: a
// small program (testdata/startbench) times a Process from NewProcess to
// its result and the child reaped, for a trivial task, interleaved with
// exec'ing and reaping a minimal static Go binary. "x-exec" is the ratio.
// It runs its b.N iterations inside that program, so it uses b.N rather
// than b.Loop; "back-to-back" starts one child after another, "gap=20ms"
// pauses untimed before each, as a server starting a child per request
// does. The program inherits MP_SPARES: MP_SPARES=0 measures starts from
// scratch.
func BenchmarkProcessStartSmallProgram(b *testing.B) {
	b.Run("back-to-back", func(b *testing.B) { benchSmallProgram(b, 0) })
	// A process started now and then, as a server that starts a child
	// per request does; the gap is not timed.
	b.Run("gap=20ms", func(b *testing.B) { benchSmallProgram(b, 20*time.Millisecond) })
}

// benchSmallProgram runs testdata/startbench with a pause of gap before
// each start.
func benchSmallProgram(b *testing.B, gap time.Duration) {
	hello := buildStaticHello(b)
	prog := filepath.Join(b.TempDir(), "startbench")
	// -trimpath keeps the checkout's path out of the binary: the path's
	// length moves the code, and that alone moved the ratio by 0.1
	// between two checkouts of the same commit.
	if out, err := exec.Command("go", "build", "-trimpath", "-o", prog, "./testdata/startbench").CombinedOutput(); err != nil {
		b.Fatalf("building startbench: %v\n%s", err, out)
	}
	b.ResetTimer()
	out, err := exec.Command(prog, "-n", strconv.Itoa(b.N), "-exec", hello, "-gap", gap.String()).Output()
	if err != nil {
		b.Fatal(err)
	}
	var perProcess, perExec float64
	if _, err := fmt.Sscan(string(out), &perProcess, &perExec); err != nil {
		b.Fatalf("startbench printed %q: %v", out, err)
	}
	b.ReportMetric(perProcess, "ns/op")
	b.ReportMetric(perExec, "exec-ns/op")
	b.ReportMetric(perProcess/perExec, "x-exec")
}

// BenchmarkProcessStart measures the same in the test binary, whose many
// packages make every child's start-up slower than a typical program's;
// "x-exec" compares it with the same minimal static binary.
func BenchmarkProcessStart(b *testing.B) {
	bin := buildStaticHello(b)
	ctx := context.Background()
	var yardstick time.Duration
	runs := 0
	for b.Loop() {
		p := mp.NewProcess(square, 7)
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}

		// Interleaved, so that both see the same machine load.
		b.StopTimer()
		start := time.Now()
		if err := exec.Command(bin).Run(); err != nil {
			b.Fatal(err)
		}
		yardstick += time.Since(start)
		runs++
		b.StartTimer()
	}
	perProcess := float64(b.Elapsed().Nanoseconds()) / float64(runs)
	perExec := float64(yardstick.Nanoseconds()) / float64(runs)
	b.ReportMetric(perExec, "exec-ns/op")
	b.ReportMetric(perProcess/perExec, "x-exec")
}

// BenchmarkProcessStartSpaced starts a Process now and then, startGap
// apart, as a server that starts a child per request does, and times only
// Start, Join and Result: the gap, in which mp may get the next start
// ready, is not counted.
func BenchmarkProcessStartSpaced(b *testing.B) {
	const startGap = 20 * time.Millisecond
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		time.Sleep(startGap)
		b.StartTimer()
		p := mp.NewProcess(square, 7)
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
		if v, err := p.Result(); err != nil || v != 49 {
			b.Fatalf("Result() = %d, %v; want 49, nil", v, err)
		}
	}
}

// BenchmarkProcessStartParallel starts children from several goroutines
// at once, all through the one spawner thread.
func BenchmarkProcessStartParallel(b *testing.B) {
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := mp.NewProcess(square, 7)
			if err := p.Start(); err != nil {
				b.Error(err)
				return
			}
			if err := p.Join(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCodec measures encoding and decoding one value as it crosses to
// a child: the fixed binary form of an int, and gob for a small struct
// (each gob value carries its type description).
func BenchmarkCodec(b *testing.B) {
	b.Run("int", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := mp.RoundTrip(123456); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("struct", func(b *testing.B) {
		v := point{X: 1, Y: 2}
		for b.Loop() {
			if _, _, err := mp.RoundTrip(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
