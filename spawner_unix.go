//go:build unix

package mp

import (
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// The spawner is one goroutine locked to its OS thread for its whole life,
// through which every child is started. On Linux the parent-death signal
// fires when the *thread* that forked the child exits, not the process
// (golang/go#27505), so forking from arbitrary goroutines, whose threads
// the runtime may retire, could kill children early. The spawner runs
// while any child it started is unreaped, and for spawnerLinger after the
// last one is reaped, so that an idle program keeps no extra goroutine or
// thread for long, while a program that starts children one after another
// does not pay for a new thread (and the exit of the old one) each time.
var spawner struct {
	mu   sync.Mutex
	live int // children started and not yet reaped, plus starts in progress
	reqs chan func()
	// idleSince is when live last dropped to 0. Only the spawner looks at
	// the clock that ends it, so that reaping a child, on the way to Join
	// returning, does not touch a timer.
	idleSince time.Time
}

// spawnerLinger is how long the spawner outlives the last child it
// started, give or take as much again: while it runs, it looks every
// spawnerLinger whether it is still needed. Creating its thread costs
// about 100 µs, so a program that starts children further apart than
// this spends at most a fifth of a percent of its time on that. Twice
// the linger is well below the 430 ms that goleak waits for goroutines
// to end.
const spawnerLinger = 50 * time.Millisecond

func startOnSpawner(cmd *exec.Cmd) error {
	spawner.mu.Lock()
	if spawner.reqs == nil {
		spawner.reqs = make(chan func())
		go spawnerLoop(spawner.reqs)
	}
	spawner.live++
	reqs := spawner.reqs
	spawner.mu.Unlock()
	errc := make(chan error, 1)
	reqs <- func() { errc <- cmd.Start() }
	err := <-errc
	if err != nil {
		releaseSpawner()
	}
	return err
}

// releaseSpawner is called once per start that failed or child reaped.
func releaseSpawner() {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	spawner.live--
	if spawner.live == 0 {
		spawner.idleSince = time.Now()
	}
}

func spawnerLoop(reqs <-chan func()) {
	// Never unlocked: when this goroutine returns, its thread exits with
	// it, which is safe only because no child it started is still alive.
	runtime.LockOSThread()
	tick := time.NewTicker(spawnerLinger)
	defer tick.Stop()
	for {
		select {
		case f := <-reqs:
			f()
		case <-tick.C:
			spawner.mu.Lock()
			if spawner.live == 0 && time.Since(spawner.idleSince) >= spawnerLinger {
				// Under mu, so that no start can be handed to this
				// spawner any more; the next one starts a new spawner.
				spawner.reqs = nil
				spawner.mu.Unlock()
				return
			}
			spawner.mu.Unlock()
		}
	}
}
