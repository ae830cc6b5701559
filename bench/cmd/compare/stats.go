package main

import (
	"math"
	"slices"
	"strings"
)

// Role says what an implementation is to the workload.
type Role int

// The roles, in the order of the chart's bars.
const (
	RoleMP     Role = iota // package mp
	RolePeer               // another Go library
	RoleFloor              // a hand-written floor
	RolePython             // a Python implementation
)

// roleOf classifies a sample by the naming rule of package bench.
func roleOf(s Sample) Role {
	switch {
	case s.Python:
		return RolePython
	case s.Impl == "mp":
		return RoleMP
	case strings.HasPrefix(s.Impl, "floor"):
		return RoleFloor
	default:
		return RolePeer
	}
}

// Stat is the median of the runs of one implementation of one workload.
type Stat struct {
	Impl   string
	Role   Role
	Ns     float64 // median ns per task
	Allocs float64 // median allocations per task, -1 when unknown
	Runs   int
}

// median returns the median of xs (the mean of the middle two for an even
// count) and NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// aggregate groups samples by workload and implementation and takes
// medians. The stats of each workload are sorted by role, then by time.
func aggregate(samples []Sample) map[string][]Stat {
	type key struct {
		workload, impl string
		python         bool
	}
	type acc struct {
		ns, allocs []float64
		role       Role
	}
	groups := map[key]*acc{}
	var order []key
	for _, s := range samples {
		k := key{s.Workload, s.Impl, s.Python}
		a := groups[k]
		if a == nil {
			a = &acc{role: roleOf(s)}
			groups[k] = a
			order = append(order, k)
		}
		a.ns = append(a.ns, s.Ns)
		if s.Allocs >= 0 {
			a.allocs = append(a.allocs, s.Allocs)
		}
	}
	out := map[string][]Stat{}
	for _, k := range order {
		a := groups[k]
		allocs := -1.0
		if len(a.allocs) > 0 {
			allocs = median(a.allocs)
		}
		out[k.workload] = append(out[k.workload], Stat{Impl: k.impl, Role: a.role, Ns: median(a.ns), Allocs: allocs, Runs: len(a.ns)})
	}
	for _, st := range out {
		slices.SortStableFunc(st, func(a, b Stat) int {
			if a.Role != b.Role {
				return int(a.Role) - int(b.Role)
			}
			switch {
			case a.Ns < b.Ns:
				return -1
			case a.Ns > b.Ns:
				return 1
			}
			return 0
		})
	}
	return out
}

// Row is one line of the summary: a workload's mp figure beside the best of
// each other role. A nil pointer means that side was not measured.
type Row struct {
	Workload Workload
	MP       *Stat
	Peer     *Stat // the fastest Go peer
	Floor    *Stat // the fastest floor
	Python   *Stat // the fastest Python implementation
	All      []Stat
}

// best returns the fastest stat of role r, or nil.
func best(st []Stat, r Role) *Stat {
	var b *Stat
	for i := range st {
		if st[i].Role == r && (b == nil || st[i].Ns < b.Ns) {
			b = &st[i]
		}
	}
	return b
}

// rows builds the summary rows: the known workloads in catalogue order,
// then any other workload that was measured, in name order.
func rows(stats map[string][]Stat) []Row {
	var out []Row
	seen := map[string]bool{}
	add := func(w Workload) {
		st := stats[w.Key]
		seen[w.Key] = true
		out = append(out, Row{Workload: w, MP: best(st, RoleMP), Peer: best(st, RolePeer), Floor: best(st, RoleFloor), Python: best(st, RolePython), All: st})
	}
	for _, w := range catalogue {
		add(w)
	}
	var extra []string
	for k := range stats {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		add(Workload{Key: k, Title: k})
	}
	return out
}

// ratio returns a/b, or NaN when either side is missing.
func ratio(a, b *Stat) float64 {
	if a == nil || b == nil || b.Ns <= 0 {
		return math.NaN()
	}
	return a.Ns / b.Ns
}
