//go:build race

package mp

// raceEnabled reports whether this binary was built with -race; its
// children then skip the race runtime's one-second pause at exit.
const raceEnabled = true
