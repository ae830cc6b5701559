package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Meta says when, where and how the figures were taken.
type Meta struct {
	Date     string
	Cores    int
	CPU      string
	Go       string
	Python   string
	Command  string   // the command the user ran
	Commands []string // the commands the runner ran
	Quick    bool
	Failures []string // steps that failed; their figures are missing
}

// fmtNs renders nanoseconds with three significant digits and a unit.
func fmtNs(ns float64) string {
	if math.IsNaN(ns) {
		return "—"
	}
	units := []struct {
		div  float64
		name string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}, {1, "ns"}}
	for _, u := range units {
		if ns >= u.div || u.div == 1 {
			return sigfig(ns/u.div) + " " + u.name
		}
	}
	panic("unreachable")
}

// sigfig formats v with three significant digits, without trailing zeros
// beyond them.
func sigfig(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// fmtRatio renders a ratio as "1.23×", or "—" when it is missing.
func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return sigfig(r) + "×"
}

// cell renders a stat with its implementation's name, or "—".
func cell(s *Stat, withName bool) string {
	if s == nil {
		return "—"
	}
	if withName {
		return fmtNs(s.Ns) + " (" + s.Impl + ")"
	}
	return fmtNs(s.Ns)
}

// barCell renders every bar of a row with its verdict.
func barCell(r Row) string {
	var parts []string
	for _, b := range r.Workload.Bars {
		got, met, ok := b.Eval(r)
		verdict := "not measured"
		if ok {
			var figure string
			switch b.Kind {
			case MaxNs:
				figure = fmtNs(got)
			case MaxAllocs:
				figure = fmt.Sprintf("%.3g", got)
			default:
				figure = fmtRatio(got)
			}
			verdict = "missed: " + figure
			if met {
				verdict = "met: " + figure
			}
		}
		parts = append(parts, b.String()+" — "+verdict)
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// writeMarkdown writes RESULTS.md.
func writeMarkdown(w io.Writer, rs []Row, m Meta) error {
	var b strings.Builder
	b.WriteString("# mp benchmark results\n\n")
	if m.Quick {
		b.WriteString("> **Quick smoke run**: tiny sizes and a single run each; these figures only show that the harness works.\n\n")
	}
	fmt.Fprintf(&b, "- Date: %s\n", m.Date)
	fmt.Fprintf(&b, "- Machine: %d cores, %s\n", m.Cores, m.CPU)
	fmt.Fprintf(&b, "- Go: %s; Python: %s\n", m.Go, m.Python)
	fmt.Fprintf(&b, "- Command: `%s`\n", m.Command)
	b.WriteString("- Figures: median of all runs, time per task (or item, or process); lower is better.\n")
	b.WriteString("  \"best Go peer\" is the fastest of ants, pond, conc and errgroup; \"Python\" the fastest Python implementation.\n\n")
	b.WriteString("![mp vs Go peers vs floors vs Python](chart.svg)\n\n")
	b.WriteString("| workload | mp | best Go peer | floor | Python | mp/floor | mp/peer | Python/mp | bar |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Workload.Title, cell(r.MP, false), cell(r.Peer, true), cell(r.Floor, false), cell(r.Python, true),
			fmtRatio(ratio(r.MP, r.Floor)), fmtRatio(ratio(r.MP, r.Peer)), fmtRatio(ratio(r.Python, r.MP)), barCell(r))
	}
	b.WriteString("\n## Every implementation\n\n")
	b.WriteString("| workload | implementation | kind | time per op | allocs per op | runs |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: |\n")
	kinds := map[Role]string{RoleMP: "mp", RolePeer: "Go peer", RoleFloor: "floor", RolePython: "Python"}
	for _, r := range rs {
		if len(r.All) == 0 {
			fmt.Fprintf(&b, "| %s | — | — | — | — | 0 |\n", r.Workload.Key)
		}
		for _, s := range r.All {
			allocs := "—"
			if s.Allocs >= 0 {
				allocs = fmt.Sprintf("%.3g", s.Allocs)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", r.Workload.Key, s.Impl, kinds[s.Role], fmtNs(s.Ns), allocs, s.Runs)
		}
	}
	if len(m.Failures) > 0 {
		b.WriteString("\n## Failures\n\n")
		for _, f := range m.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	b.WriteString("\n## Commands run\n\n```\n")
	for _, c := range m.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}
