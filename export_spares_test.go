//go:build unix

package mp

import (
	"maps"
	"slices"
	"time"
)

// SparePids returns the pids of the spare children, started or starting,
// that have not been handed a task.
func SparePids() []int {
	spares.mu.Lock()
	defer spares.mu.Unlock()
	return slices.Sorted(maps.Keys(spares.pids))
}

// SettleSpares waits until no spare is being started, and returns how
// many are ready: each holds one descriptor of this process's.
func SettleSpares() int {
	for {
		spares.mu.Lock()
		starting, ready := len(spares.starting), len(spares.ready)
		spares.mu.Unlock()
		if starting == 0 {
			return ready
		}
		time.Sleep(time.Millisecond)
	}
}

// ReadySparePids returns the pids of the spares ready to be handed a
// task, oldest first.
func ReadySparePids() []int {
	spares.mu.Lock()
	defer spares.mu.Unlock()
	var out []int
	for _, sp := range spares.ready {
		out = append(out, sp.ch.pid)
	}
	return out
}

// AwaitSpare waits up to d until a spare is ready and returns its pid, or
// 0 if none became ready.
func AwaitSpare(d time.Duration) int {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if pids := ReadySparePids(); len(pids) > 0 {
			return pids[0]
		}
		time.Sleep(time.Millisecond)
	}
	return 0
}

// CheckSpares sets whether a start makes sure that a spare is alive before
// handing it a task, and returns the function that restores the check.
func CheckSpares(on bool) (restore func()) {
	spares.mu.Lock()
	old := spares.noCheck
	spares.noCheck = !on
	spares.mu.Unlock()
	return func() {
		spares.mu.Lock()
		spares.noCheck = old
		spares.mu.Unlock()
	}
}

// SparesFromEnv is sparesFromEnv.
var SparesFromEnv = sparesFromEnv
