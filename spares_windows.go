package mp

import "sync"

// spareSet keeps no spares on Windows, where no child starts.
type spareSet struct {
	mu   sync.Mutex
	want int
}

var spares = spareSet{want: -1}

// set records n, which has no effect, and returns the previous setting.
func (s *spareSet) set(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.want
	if prev < 0 {
		prev = sparesFromEnv()
	}
	s.want = n
	return prev
}
