package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// A Sample is one run of one implementation of one workload.
type Sample struct {
	Workload string  // the benchmark's name without its last element, e.g. "SubmitJoin/workers=2"
	Impl     string  // the last element: "mp", a Go peer, "floor…", or a Python implementation
	Python   bool    // whether the sample came from a Python script
	Ns       float64 // nanoseconds per task (or item, or process)
	Allocs   float64 // allocations per task; -1 when unknown
}

// goBenchLine matches a result line of `go test -bench`: the name, with the
// -GOMAXPROCS suffix go adds, the iteration count, then value/unit pairs.
var goBenchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseGoLine parses one line of `go test -bench -benchmem` output. It
// reports false for lines that are not results of a sub-benchmark.
//
// The per-task figure is the custom metric whose unit starts with "ns/"
// (ns/task, ns/item, ns/process) when the benchmark reports one, and ns/op
// otherwise. Allocations per task are allocs/op scaled by the same ratio,
// since each iteration ran ns/op ÷ ns/task tasks.
func parseGoLine(line string) (Sample, bool) {
	m := goBenchLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return Sample{}, false
	}
	i := strings.LastIndexByte(m[1], '/')
	if i <= 0 || i == len(m[1])-1 {
		return Sample{}, false
	}
	s := Sample{Workload: m[1][:i], Impl: m[1][i+1:], Allocs: -1}
	fields := strings.Fields(m[2])
	var nsOp, perTask, allocsOp float64
	haveOp, havePer, haveAllocs := false, false, false
	for j := 0; j+1 < len(fields); j += 2 {
		v, err := strconv.ParseFloat(fields[j], 64)
		if err != nil {
			return Sample{}, false
		}
		switch unit := fields[j+1]; {
		case unit == "ns/op":
			nsOp, haveOp = v, true
		case strings.HasPrefix(unit, "ns/"):
			perTask, havePer = v, true
		case unit == "allocs/op":
			allocsOp, haveAllocs = v, true
		}
	}
	switch {
	case havePer:
		s.Ns = perTask
	case haveOp:
		s.Ns = nsOp
	default:
		return Sample{}, false
	}
	if haveAllocs && haveOp && nsOp > 0 {
		s.Allocs = allocsOp * s.Ns / nsOp
	}
	return s, true
}

// parsePythonLine parses a line "RESULT <workload> <impl> <ns_per_op>" that
// the scripts in python/ print. It reports false for any other line.
func parsePythonLine(line string) (Sample, bool) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "RESULT" {
		return Sample{}, false
	}
	v, err := strconv.ParseFloat(f[3], 64)
	if err != nil || v <= 0 {
		return Sample{}, false
	}
	return Sample{Workload: f[1], Impl: f[2], Python: true, Ns: v, Allocs: -1}, true
}

// parsePython reads the output of a Python script and returns its samples.
func parsePython(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if s, ok := parsePythonLine(sc.Text()); ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// benchstatLine renders a Python sample as a `go test -bench` line, so that
// the raw Python figures can be read by benchstat too.
func benchstatLine(s Sample) string {
	name := strings.NewReplacer(" ", "_").Replace("Python/" + s.Workload + "/" + s.Impl)
	return fmt.Sprintf("Benchmark%s 1 %.1f ns/op", name, s.Ns)
}
