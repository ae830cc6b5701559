//go:build !race

package mp

// raceEnabled reports whether this binary was built with -race.
const raceEnabled = false
