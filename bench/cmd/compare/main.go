// Command compare runs every benchmark of package bench and every Python
// workload in python/, one after the other, and writes RESULTS.md and
// chart.svg: mp beside the best Go peer, a hand-written floor and Python.
//
// Run it from the bench module:
//
//	cd bench && go run ./cmd/compare
//
// A full run takes 6 to 10 minutes on two cores. -quick runs tiny sizes
// once each, as a smoke test, and writes its report under out/quick/ so
// that it never replaces the official one. Raw outputs (benchstat-readable)
// go to out/.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// scripts are the Python workloads, run in this order.
var scripts = []string{"threads.py", "procpool.py", "process.py", "mpqueue.py", "shared.py"}

// config is what the flags set.
type config struct {
	quick      bool
	count      int
	benchtime  string
	bench      string
	tags       string
	python     string
	skipGo     bool
	skipPython bool
	outDir     string
}

func main() {
	var c config
	flag.BoolVar(&c.quick, "quick", false, "smoke run: tiny sizes, one run each, report under out/quick/")
	flag.IntVar(&c.count, "count", 5, "runs of every workload; the report takes medians")
	flag.StringVar(&c.benchtime, "benchtime", "", "go test -benchtime (default go's 1s; 100ms with -quick)")
	flag.StringVar(&c.bench, "bench", ".", "go test -bench: which Go benchmarks to run")
	flag.StringVar(&c.tags, "tags", "", "go test -tags")
	flag.StringVar(&c.python, "python", "python3", "the Python interpreter")
	flag.BoolVar(&c.skipGo, "skip-go", false, "do not run the Go benchmarks")
	flag.BoolVar(&c.skipPython, "skip-python", false, "do not run the Python workloads")
	flag.StringVar(&c.outDir, "o", "", "directory for RESULTS.md and chart.svg (default . , or out/quick with -quick)")
	flag.Parse()
	if c.quick {
		c.count = 1
		if c.benchtime == "" {
			c.benchtime = "100ms"
		}
	}
	if c.outDir == "" {
		c.outDir = "."
		if c.quick {
			c.outDir = filepath.Join("out", "quick")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// run runs the steps in sequence and writes the report. A step that fails
// is recorded in the report; its workloads show "—".
func run(ctx context.Context, c config) error {
	if mod, err := os.ReadFile("go.mod"); err != nil || !bytes.Contains(mod, []byte("module github.com/mpgo/mp/bench")) {
		return fmt.Errorf("run me from the bench module: cd bench && go run ./cmd/compare")
	}
	if err := os.MkdirAll(filepath.Join("out"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(c.outDir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	meta := Meta{
		Date:    start.UTC().Format("2006-01-02 15:04 UTC"),
		Cores:   runtime.NumCPU(),
		CPU:     cpuModel(),
		Go:      firstLine(output(ctx, "go", "version")),
		Python:  "not run",
		Command: strings.TrimSpace("cd bench && go run ./cmd/compare " + strings.Join(os.Args[1:], " ")),
		Quick:   c.quick,
	}

	type pyCase struct{ script, name string }
	var cases []pyCase
	if !c.skipPython {
		meta.Python = firstLine(output(ctx, c.python, "--version"))
		for _, s := range scripts {
			cmd := exec.CommandContext(ctx, c.python, s, "--list")
			cmd.Dir = "python"
			out, err := cmd.Output()
			if err != nil {
				meta.Failures = append(meta.Failures, fmt.Sprintf("%s --list: %v", s, err))
				continue
			}
			for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if name != "" {
					cases = append(cases, pyCase{s, name})
				}
			}
		}
	}
	steps := len(cases)
	if !c.skipGo {
		steps++
	}
	step := 0
	var samples []Sample

	if !c.skipGo {
		step++
		// One go test per run, each running every workload once, rather
		// than one go test with -count: -count runs an implementation's
		// runs back to back, so that a machine drifting in the meantime
		// shows up as a ratio between implementations. Interleaved, the
		// drift spreads over all of them alike.
		args := []string{"test", "-run", "^$", "-bench", c.bench, "-benchmem", "-count=1", "-timeout", "30m"}
		if c.benchtime != "" {
			args = append(args, "-benchtime="+c.benchtime)
		}
		if c.tags != "" {
			args = append(args, "-tags="+c.tags)
		}
		args = append(args, ".")
		cmdline := "go " + strings.Join(quoteArgs(args), " ")
		meta.Commands = append(meta.Commands, fmt.Sprintf("%s  # %d times", cmdline, c.count))
		fmt.Printf("[%d/%d] go: %s, %d times (every Go workload once a time)\n", step, steps, cmdline, c.count)
		raw, err := os.Create(filepath.Join("out", "go-bench.txt"))
		if err != nil {
			return err
		}
		defer raw.Close()
		for run := range c.count {
			fmt.Printf("      run %d of %d\n", run+1, c.count)
			got, err := runGo(ctx, args, raw, start)
			samples = append(samples, got...)
			if err != nil {
				meta.Failures = append(meta.Failures, fmt.Sprintf("%s (run %d): %v (the figures it printed are kept)", cmdline, run+1, err))
				fmt.Printf("      go test failed: %v\n", err)
			}
		}
	}

	if len(cases) > 0 {
		raw, err := os.Create(filepath.Join("out", "python-bench.txt"))
		if err != nil {
			return err
		}
		defer raw.Close()
		pyArgs := []string{"--count", fmt.Sprint(c.count)}
		if c.quick {
			pyArgs = append(pyArgs, "--quick")
		}
		for _, s := range scripts {
			meta.Commands = append(meta.Commands, fmt.Sprintf("(cd python && %s %s %s --case <each case>)", c.python, s, strings.Join(pyArgs, " ")))
		}
		for _, pc := range cases {
			step++
			fmt.Printf("[%d/%d] python: %s ... ", step, steps, pc.name)
			args := append([]string{pc.script, "--case", pc.name}, pyArgs...)
			got, err := runPython(ctx, c.python, args)
			for _, s := range got {
				fmt.Fprintln(raw, benchstatLine(s))
			}
			samples = append(samples, got...)
			switch {
			case err != nil:
				meta.Failures = append(meta.Failures, fmt.Sprintf("python %s --case %q: %v", pc.script, pc.name, err))
				fmt.Printf("failed: %v\n", err)
			case len(got) == 0:
				meta.Failures = append(meta.Failures, fmt.Sprintf("python %s --case %q printed no RESULT line", pc.script, pc.name))
				fmt.Println("no result")
			default:
				ns := make([]float64, len(got))
				for i, s := range got {
					ns[i] = s.Ns
				}
				fmt.Printf("%s/op (median of %d) [%s]\n", fmtNs(median(ns)), len(got), time.Since(start).Round(time.Second))
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	rs := rows(aggregate(samples))
	mdPath, svgPath := filepath.Join(c.outDir, "RESULTS.md"), filepath.Join(c.outDir, "chart.svg")
	var md, svg bytes.Buffer
	if err := writeMarkdown(&md, rs, meta); err != nil {
		return err
	}
	title := fmt.Sprintf("mp vs Go peers, floors and Python — %s, %d cores %s", meta.Date, meta.Cores, meta.CPU)
	if c.quick {
		title += " (quick smoke run)"
	}
	if err := writeSVG(&svg, rs, title); err != nil {
		return err
	}
	if err := os.WriteFile(mdPath, md.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, svg.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s in %s\n", mdPath, svgPath, time.Since(start).Round(time.Second))
	if len(meta.Failures) > 0 {
		fmt.Printf("%d step(s) failed; see RESULTS.md\n", len(meta.Failures))
	}
	return nil
}

// runGo runs go with args, copies its output to raw and the terminal's
// progress line, and returns the samples it printed.
func runGo(ctx context.Context, args []string, raw io.Writer, start time.Time) ([]Sample, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stderr = os.Stderr
	killGroup(cmd)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var samples []Sample
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(raw, line)
		if s, ok := parseGoLine(line); ok {
			samples = append(samples, s)
			fmt.Printf("      %-40s %12s/op  (%d results, %s)\n", s.Workload+"/"+s.Impl, fmtNs(s.Ns), len(samples), time.Since(start).Round(time.Second))
		} else if strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL") || strings.Contains(line, "_test.go:") {
			fmt.Println("      " + line)
		}
	}
	if err := sc.Err(); err != nil {
		_ = cmd.Wait()
		return samples, err
	}
	return samples, cmd.Wait()
}

// runPython runs one Python case and returns its samples. A case that runs
// longer than ten minutes is stopped.
func runPython(ctx context.Context, python string, args []string) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = "python"
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	killGroup(cmd)
	out, err := cmd.Output()
	samples, perr := parsePython(bytes.NewReader(out))
	if err != nil {
		return samples, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 5))
	}
	return samples, perr
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or the
// architecture where there is none.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	return cpuModelFrom(f)
}

// cpuModelFrom reads the first "model name" of a /proc/cpuinfo.
func cpuModelFrom(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// output returns the standard output of a short command, or "unknown".
func output(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return string(out)
}

// firstLine returns the first line of s, trimmed.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// quoteArgs single-quotes the arguments a shell would mangle.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$*? |&;<>()") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}
