package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// The chart's geometry, in pixels.
const (
	chartW   = 1120
	labelW   = 380 // workload titles, right-aligned before the plot
	plotX0   = labelW + 10
	plotX1   = 900 // value labels go right of the bars, up to chartW
	chartTop = 78
	barH     = 11
	barGap   = 2
	groupPad = 14
	axisH    = 56
)

// series are the bars of each group, in order.
var series = []struct {
	role  Role
	name  string
	color string
}{
	{RoleMP, "mp", "#2563eb"},
	{RolePeer, "best Go peer", "#f59e0b"},
	{RoleFloor, "floor (hand-written)", "#6b7280"},
	{RolePython, "Python (best)", "#16a34a"},
}

// pick returns the row's stat for a role.
func (r Row) pick(role Role) *Stat {
	switch role {
	case RoleMP:
		return r.MP
	case RolePeer:
		return r.Peer
	case RoleFloor:
		return r.Floor
	default:
		return r.Python
	}
}

// xmlEscape escapes text for an SVG text node or attribute.
var xmlEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace

// fmtTick renders a power of ten of nanoseconds: "1 ns", "10 µs", "1 s".
func fmtTick(ns float64) string {
	for _, u := range []struct {
		div  float64
		name string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}, {1, "ns"}} {
		if ns >= u.div || u.div == 1 {
			return fmt.Sprintf("%g %s", math.Round(ns/u.div*1000)/1000, u.name)
		}
	}
	panic("unreachable")
}

// decades returns the powers of ten that bracket every measured figure.
func decades(rs []Row) (lo, hi float64) {
	minV, maxV := math.Inf(1), math.Inf(-1)
	for _, r := range rs {
		for _, s := range series {
			if st := r.pick(s.role); st != nil && st.Ns > 0 {
				minV, maxV = math.Min(minV, st.Ns), math.Max(maxV, st.Ns)
			}
		}
	}
	if math.IsInf(minV, 1) {
		return 1, 10
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(minV))), math.Pow(10, math.Ceil(math.Log10(maxV)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

// writeSVG draws grouped horizontal bars on a log scale: for each workload,
// mp, the best Go peer, the floor and the best Python implementation.
// Missing figures are marked "not measured" instead of a bar.
func writeSVG(w io.Writer, rs []Row, title string) error {
	lo, hi := decades(rs)
	x := func(v float64) float64 {
		return plotX0 + (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*(plotX1-plotX0)
	}
	groupH := len(series)*(barH+barGap) + groupPad
	plotH := len(rs) * groupH
	height := chartTop + plotH + axisH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif">`+"\n", chartW, height, chartW, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold" fill="#111827">%s</text>`+"\n", 12, xmlEscape(title))
	lx := 12
	for _, s := range series {
		fmt.Fprintf(&b, `<rect x="%d" y="40" width="12" height="12" fill="%s"/><text x="%d" y="50" font-size="12" fill="#111827">%s</text>`+"\n", lx, s.color, lx+16, xmlEscape(s.name))
		lx += 16 + 6*len(s.name) + 32
	}
	// Decade grid lines and their labels.
	for v := lo; v <= hi*1.0001; v *= 10 {
		xv := x(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e7eb"/>`+"\n", xv, chartTop-6, xv, chartTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#374151">%s</text>`+"\n", xv, chartTop+plotH+16, fmtTick(v))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#374151"/>`+"\n", plotX0, chartTop+plotH, plotX1, chartTop+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="middle" fill="#111827">time per task / item / process (log scale; lower is better)</text>`+"\n", (plotX0+plotX1)/2, chartTop+plotH+40)
	for i, r := range rs {
		gy := chartTop + i*groupH
		if i%2 == 1 {
			fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f9fafb"/>`+"\n", gy-groupPad/2, chartW, groupH)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end" fill="#111827">%s</text>`+"\n", labelW, gy+len(series)*(barH+barGap)/2+4, xmlEscape(r.Workload.Title))
		for j, s := range series {
			y := gy + j*(barH+barGap)
			st := r.pick(s.role)
			if st == nil || st.Ns <= 0 {
				// Some workloads have no Go peer or no floor by design; only
				// a missing mp or Python figure is worth a note.
				if s.role == RolePeer || s.role == RoleFloor {
					continue
				}
				fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#9ca3af">%s: not measured</text>`+"\n", plotX0+4, y+barH-2, xmlEscape(s.name))
				continue
			}
			xe := math.Max(x(st.Ns), plotX0+1)
			label := fmtNs(st.Ns)
			if s.role == RolePeer || s.role == RolePython {
				label += " · " + st.Impl
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n", plotX0, y, xe-plotX0, barH, s.color, xmlEscape(s.name+": "+label))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#374151">%s</text>`+"\n", xe+4, y+barH-2, xmlEscape(label))
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
