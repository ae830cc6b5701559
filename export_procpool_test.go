package mp

// ProcessPoolPids returns the pids of the live workers of a process pool.
func ProcessPoolPids(p *Pool) []int { return p.be.(*procBackend).pids() }

// CallerRuns returns how many tasks of a process pool ran on the
// goroutine of their Apply's caller (see procBackend.runNow).
func CallerRuns(p *Pool) int64 { return p.be.(*procBackend).callerRuns.Load() }

// IdleWorkers returns how many workers of a process pool a caller of
// Apply could run its task on now.
func IdleWorkers(p *Pool) int {
	n := 0
	for i := range p.be.(*procBackend).workers {
		if w := p.be.(*procBackend).workers[i].Load(); w != nil && w.lend.Load() == lendIdle {
			n++
		}
	}
	return n
}
