package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goOutput is canned `go test -bench -benchmem` output in the shape package
// bench prints, with two runs of some benchmarks and the noise around them.
const goOutput = `goos: linux
goarch: amd64
pkg: github.com/mpgo/mp/bench
cpu: AMD EPYC
BenchmarkSubmitJoin/workers=2/mp-2         	      12	  60000000 ns/op	        60.00 ns/task	     320 B/op	       4 allocs/op
BenchmarkSubmitJoin/workers=2/mp-2         	      12	  80000000 ns/op	        80.00 ns/task	     320 B/op	       4 allocs/op
BenchmarkSubmitJoin/workers=2/mp-2         	      12	  70000000 ns/op	        70.00 ns/task	     320 B/op	       4 allocs/op
BenchmarkSubmitJoin/workers=2/ants-2       	       2	 500000000 ns/op	       500.0 ns/task	   12464 B/op	      74 allocs/op
BenchmarkSubmitJoin/workers=2/pond-2       	      10	 100000000 ns/op	       100.0 ns/task	17376912 B/op	      81 allocs/op
BenchmarkSubmitJoin/workers=2/floor-2      	      20	  50000000 ns/op	        50.00 ns/task	    9648 B/op	       5 allocs/op
BenchmarkFuture/pond-2                     	      13	  10495129 ns/op	      1050 ns/task	 2686696 B/op	   70056 allocs/op
BenchmarkFuture/floor-2                    	      50	   3259711 ns/op	       326.0 ns/task	 1280000 B/op	   10000 allocs/op
BenchmarkXQueueBytes/floor-2               	       1	 207689881 ns/op	5048.76 MB/s	    207690 ns/item	     792 B/op	       7 allocs/op
--- FAIL: BenchmarkQueue/1P1C/mp
    mp_queue_test.go:30: boom
BenchmarkNewThing/mp-2                     	     100	      1000 ns/op
PASS
ok  	github.com/mpgo/mp/bench	5.776s
`

// pyOutput is canned output of a script in python/.
const pyOutput = `warming up
RESULT SubmitJoin/workers=2 ThreadPool 11777.0
RESULT SubmitJoin/workers=2 ThreadPool 12000.0
RESULT SubmitJoin/workers=2 ThreadPoolExecutor 22783.5
RESULT Future ThreadPool 9653.2
RESULT Future ThreadPool not-a-number
RESULT too few
`

func parseGoText(t *testing.T, text string) []Sample {
	t.Helper()
	var out []Sample
	for _, line := range strings.Split(text, "\n") {
		if s, ok := parseGoLine(line); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestParseGoLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Sample
		ok   bool
	}{
		{"custom metric wins and scales allocs",
			"BenchmarkSubmitJoin/workers=2/pond-2  10  100000000 ns/op  100.0 ns/task  17376912 B/op  1000000 allocs/op",
			Sample{Workload: "SubmitJoin/workers=2", Impl: "pond", Ns: 100, Allocs: 1}, true},
		{"ns/op alone",
			"BenchmarkNewThing/mp-2  100  1000 ns/op",
			Sample{Workload: "NewThing", Impl: "mp", Ns: 1000, Allocs: -1}, true},
		{"no GOMAXPROCS suffix",
			"BenchmarkProcPoolMap/chunk=1/mp  3  500000 ns/op  5.0 ns/item  0 B/op  0 allocs/op",
			Sample{Workload: "ProcPoolMap/chunk=1", Impl: "mp", Ns: 5, Allocs: 0}, true},
		{"MB/s between the metrics",
			"BenchmarkXQueueBytes/floor-2  1  207689881 ns/op  5048.76 MB/s  207690 ns/item  792 B/op  7 allocs/op",
			Sample{Workload: "XQueueBytes", Impl: "floor", Ns: 207690, Allocs: 7 * 207690 / 207689881.0}, true},
		{"top-level benchmark without implementation", "BenchmarkMap-2  10  1000 ns/op", Sample{}, false},
		{"header", "goos: linux", Sample{}, false},
		{"failure", "--- FAIL: BenchmarkQueue/1P1C/mp", Sample{}, false},
		{"name only, as printed before a slow benchmark's result", "BenchmarkSleep/mp-2", Sample{}, false},
		{"garbage value", "BenchmarkMap/mp-2  10  abc ns/op", Sample{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseGoLine(tt.line)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, tt.want.Workload, got.Workload)
			assert.Equal(t, tt.want.Impl, got.Impl)
			assert.False(t, got.Python)
			assert.InDelta(t, tt.want.Ns, got.Ns, 1e-9)
			assert.InDelta(t, tt.want.Allocs, got.Allocs, 1e-9)
		})
	}
}

func TestParsePython(t *testing.T) {
	got, err := parsePython(strings.NewReader(pyOutput))
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, Sample{Workload: "SubmitJoin/workers=2", Impl: "ThreadPool", Python: true, Ns: 11777, Allocs: -1}, got[0])
	assert.Equal(t, "ThreadPoolExecutor", got[2].Impl)
	assert.Equal(t, "Future", got[3].Workload)
}

func TestBenchstatLine(t *testing.T) {
	s := Sample{Workload: "ProcPoolMap/chunk=1", Impl: "Pool.map(chunksize=1)", Python: true, Ns: 38970.7}
	line := benchstatLine(s)
	assert.Equal(t, "BenchmarkPython/ProcPoolMap/chunk=1/Pool.map(chunksize=1) 1 38970.7 ns/op", line)
	back, ok := parseGoLine(line)
	require.True(t, ok, "benchstat lines must parse as go test lines")
	assert.Equal(t, "Python/ProcPoolMap/chunk=1", back.Workload)
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1000, 10, 1}, 10},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		assert.Equal(t, tt.want, median(tt.in))
		assert.Equal(t, in, tt.in, "median must not reorder its input")
	}
	assert.True(t, math.IsNaN(median(nil)))
}

// canned returns the rows of goOutput and pyOutput together.
func canned(t *testing.T) []Row {
	t.Helper()
	samples := parseGoText(t, goOutput)
	py, err := parsePython(strings.NewReader(pyOutput))
	require.NoError(t, err)
	return rows(aggregate(append(samples, py...)))
}

func findRow(t *testing.T, rs []Row, key string) Row {
	t.Helper()
	for _, r := range rs {
		if r.Workload.Key == key {
			return r
		}
	}
	require.Failf(t, "no row", "workload %q", key)
	return Row{}
}

func TestRows(t *testing.T) {
	rs := canned(t)
	require.GreaterOrEqual(t, len(rs), len(catalogue)+1)
	for i, w := range catalogue {
		assert.Equal(t, w.Key, rs[i].Workload.Key, "catalogue order")
	}
	assert.Equal(t, "NewThing", rs[len(rs)-1].Workload.Key, "unknown workloads come last")

	sj := findRow(t, rs, "SubmitJoin/workers=2")
	require.NotNil(t, sj.MP)
	assert.Equal(t, 70.0, sj.MP.Ns, "median of the three mp runs")
	assert.Equal(t, 3, sj.MP.Runs)
	assert.InDelta(t, 4*70/70e6, sj.MP.Allocs, 1e-12)
	require.NotNil(t, sj.Peer)
	assert.Equal(t, "pond", sj.Peer.Impl, "the fastest peer")
	require.NotNil(t, sj.Floor)
	assert.Equal(t, 50.0, sj.Floor.Ns)
	require.NotNil(t, sj.Python)
	assert.Equal(t, "ThreadPool", sj.Python.Impl)
	assert.Equal(t, 11888.5, sj.Python.Ns)
	assert.InDelta(t, 1.4, ratio(sj.MP, sj.Floor), 1e-9)
	assert.InDelta(t, 0.7, ratio(sj.MP, sj.Peer), 1e-9)
	assert.Equal(t, []Role{RoleMP, RolePeer, RolePeer, RoleFloor, RolePython, RolePython}, roles(sj.All))

	fut := findRow(t, rs, "Future")
	assert.Nil(t, fut.MP, "mp not measured")
	assert.True(t, math.IsNaN(ratio(fut.MP, fut.Floor)))

	empty := findRow(t, rs, "ProcPoolApply")
	assert.Nil(t, empty.MP)
	assert.Nil(t, empty.Python)
	assert.Empty(t, empty.All)
}

func roles(st []Stat) []Role {
	out := make([]Role, len(st))
	for i, s := range st {
		out[i] = s.Role
	}
	return out
}

func TestBarEval(t *testing.T) {
	mp, floor, py := &Stat{Ns: 140}, &Stat{Ns: 100}, &Stat{Ns: 1400}
	tests := []struct {
		name    string
		bar     Bar
		row     Row
		got     float64
		met, ok bool
	}{
		{"over floor met", Bar{MaxOverFloor, 1.5}, Row{MP: mp, Floor: floor}, 1.4, true, true},
		{"over floor missed", Bar{MaxOverFloor, 1.25}, Row{MP: mp, Floor: floor}, 1.4, false, true},
		{"over floor without mp", Bar{MaxOverFloor, 1.5}, Row{Floor: floor}, math.NaN(), false, false},
		{"python met", Bar{MinPythonOver, 10}, Row{MP: mp, Python: py}, 10, true, true},
		{"python missed", Bar{MinPythonOver, 11}, Row{MP: mp, Python: py}, 10, false, true},
		{"absolute met", Bar{MaxNs, 140}, Row{MP: mp}, 140, true, true},
		{"absolute without mp", Bar{MaxNs, 140}, Row{}, math.NaN(), false, false},
		{"allocs met", Bar{MaxAllocs, 0.01}, Row{MP: &Stat{Allocs: 0.004}}, 0.004, true, true},
		{"allocs missed", Bar{MaxAllocs, 1}, Row{MP: &Stat{Allocs: 7}}, 7, false, true},
		{"allocs unknown", Bar{MaxAllocs, 1}, Row{MP: &Stat{Allocs: -1}}, math.NaN(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, met, ok := tt.bar.Eval(tt.row)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.met, met)
			if tt.ok {
				assert.InDelta(t, tt.got, got, 1e-9)
			}
		})
	}
	assert.Equal(t, "mp ≤ 1.5× floor", Bar{MaxOverFloor, 1.5}.String())
	assert.Equal(t, "mp ≥ 10× faster than Python", Bar{MinPythonOver, 10}.String())
	assert.Equal(t, "mp ≤ 3.30 µs", Bar{MaxNs, 3300}.String())
	assert.Equal(t, "mp ≤ 0.01 allocs/op", Bar{MaxAllocs, 0.01}.String())
}

func TestFormat(t *testing.T) {
	tests := []struct {
		ns   float64
		want string
	}{
		{5.726, "5.73 ns"},
		{52.34, "52.3 ns"},
		{999, "999 ns"},
		{1050, "1.05 µs"},
		{33500, "33.5 µs"},
		{1818780, "1.82 ms"},
		{123362999, "123 ms"},
		{2.5e9, "2.50 s"},
		{math.NaN(), "—"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, fmtNs(tt.ns))
	}
	assert.Equal(t, "1.40×", fmtRatio(1.4))
	assert.Equal(t, "—", fmtRatio(math.NaN()))
	assert.Equal(t, "1 ns", fmtTick(1))
	assert.Equal(t, "100 µs", fmtTick(1e5))
	assert.Equal(t, "10 s", fmtTick(1e10))
}

func TestWriteMarkdown(t *testing.T) {
	meta := Meta{Date: "2026-11-26 06:00 UTC", Cores: 2, CPU: "AMD EPYC", Go: "go version go1.26.8 linux/amd64",
		Python: "Python 3.11.7", Command: "cd bench && go run ./cmd/compare", Commands: []string{"go test -bench ."},
		Failures: []string{"python mpqueue.py: exit status 1"}}
	var b bytes.Buffer
	require.NoError(t, writeMarkdown(&b, canned(t), meta))
	md := b.String()
	for _, want := range []string{
		"- Machine: 2 cores, AMD EPYC",
		"- Command: `cd bench && go run ./cmd/compare`",
		"![mp vs Go peers vs floors vs Python](chart.svg)",
		"| submit+join 1M trivial tasks, 2 workers | 70.0 ns | 100 ns (pond) | 50.0 ns | 11.9 µs (ThreadPool) | 1.40× | 0.70× | 170× | mp ≤ 1.5× floor — met: 1.40×; mp ≤ 0.01 allocs/op — met: 4e-06 |",
		"| ApplyAsync+Get (futures), GOMAXPROCS workers | — | 1.05 µs (pond) | 326 ns | 9.65 µs (ThreadPool) | — | — | — | mp ≤ 1.25× floor — not measured; mp ≤ 1 allocs/op — not measured |",
		"| SubmitJoin/workers=2 | mp | mp | 70.0 ns | 4e-06 | 3 |",
		"| ProcPoolApply | — | — | — | — | 0 |",
		"## Failures",
		"python mpqueue.py: exit status 1",
	} {
		assert.Contains(t, md, want)
	}
	assert.NotContains(t, md, "Quick smoke run")

	b.Reset()
	meta.Quick = true
	require.NoError(t, writeMarkdown(&b, canned(t), meta))
	assert.Contains(t, b.String(), "Quick smoke run")
}

func TestWriteSVG(t *testing.T) {
	tests := []struct {
		name string
		rows []Row
	}{
		{"canned", canned(t)},
		{"nothing measured", rows(nil)},
		{"no rows", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, writeSVG(&b, tt.rows, `mp <&> "Python"`))
			svg := b.String()
			rects, texts := wellFormed(t, svg)
			assert.Contains(t, svg, `fill="#ffffff"`, "white background")
			assert.Contains(t, svg, "log scale")
			assert.Contains(t, svg, "mp &lt;&amp;&gt; &quot;Python&quot;")
			for _, s := range series {
				assert.Contains(t, texts, s.name, "legend")
			}
			bars := 0
			for _, r := range tt.rows {
				for _, s := range series {
					if r.pick(s.role) != nil {
						bars++
					}
				}
			}
			// One background, a legend swatch per series, the measured
			// bars, and a stripe behind every other group.
			assert.Equal(t, 1+len(series)+bars+len(tt.rows)/2, rects)
		})
	}

	var b bytes.Buffer
	require.NoError(t, writeSVG(&b, canned(t), "t"))
	assert.Contains(t, b.String(), "mp: not measured")
	assert.Contains(t, b.String(), "100 ns · pond")
}

// wellFormed parses svg as XML and returns its number of rect elements and
// the text of its text elements.
func wellFormed(t *testing.T, svg string) (rects int, texts []string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	inText := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return rects, texts
		}
		require.NoError(t, err)
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "rect":
				rects++
			case "text":
				inText = true
			}
		case xml.EndElement:
			inText = inText && e.Name.Local != "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		}
	}
}

func TestDecades(t *testing.T) {
	lo, hi := decades([]Row{{MP: &Stat{Ns: 5.7}, Python: &Stat{Ns: 123e6}}})
	assert.Equal(t, 1.0, lo)
	assert.Equal(t, 1e9, hi)
	lo, hi = decades([]Row{{MP: &Stat{Ns: 100}}})
	assert.Equal(t, 100.0, lo)
	assert.Equal(t, 1000.0, hi)
}

func TestCPUModelFrom(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	assert.Equal(t, "AMD EPYC 7B13", cpuModelFrom(strings.NewReader(info)))
	assert.NotEmpty(t, cpuModelFrom(strings.NewReader("")))
}

func TestQuoteArgs(t *testing.T) {
	assert.Equal(t, []string{"test", "-run", "'^$'", "-bench", "."}, quoteArgs([]string{"test", "-run", "^$", "-bench", "."}))
}
