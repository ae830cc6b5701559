package mp

// ProcessPoolPids returns the pids of the live workers of a process pool.
func ProcessPoolPids(p *Pool) []int { return p.be.(*procBackend).pids() }
