package mp

import (
	"os"
	"slices"
	"sync"
)

// children holds the children this process started and has not yet
// reaped.
var children = struct {
	mu   sync.Mutex
	live map[*child]struct{}
}{live: map[*child]struct{}{}}

// addChild records a started child; spawn calls it once the child runs.
func addChild(ch *child) {
	children.mu.Lock()
	children.live[ch] = struct{}{}
	children.mu.Unlock()
}

// removeChild forgets a child; reap calls it before the child counts as
// done, so that a joined child is never listed.
func removeChild(ch *child) {
	children.mu.Lock()
	delete(children.live, ch)
	children.mu.Unlock()
}

// ActiveChildren returns the children that this process started and that
// have not yet ended: [Process] children and process-pool workers
// ("PoolWorker-N"), in increasing order of pid. It is the analogue of
// Python's multiprocessing.active_children(), which also joins the
// children that have ended; mp reaps them itself, so a child that has
// been joined, or has ended, is never listed.
func ActiveChildren() []ProcessInfo {
	children.mu.Lock()
	out := make([]ProcessInfo, 0, len(children.live))
	for ch := range children.live {
		out = append(out, ProcessInfo{Name: ch.name, Pid: ch.pid, ParentPid: os.Getpid(), IsChild: true})
	}
	children.mu.Unlock()
	slices.SortFunc(out, func(a, b ProcessInfo) int { return a.Pid - b.Pid })
	return out
}
