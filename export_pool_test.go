package mp

// OwedLen returns how many failed results p keeps for Join's report.
func OwedLen(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.owed)
}
