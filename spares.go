package mp

import (
	"os"
	"strconv"
)

// defaultSpares is how many spare children mp keeps unless MP_SPARES or
// SetSpares says otherwise.
const defaultSpares = 1

// SetSpares sets how many spare child processes mp keeps ready, and
// returns the previous setting; n <= 0 disables them. The default is 1,
// or the value of the environment variable MP_SPARES when it holds a
// number (MP_SPARES=0 turns spares off without a code change); SetSpares
// overrides both.
//
// A spare is this program started ahead of need: exec'd, through package
// initialisation and [Main]'s handshake, and waiting for a task. Starting
// a [Process] then hands a spare its name and task in one message instead
// of exec'ing the program, which takes a round trip to the child (a few
// tens of microseconds) instead of a whole start-up (milliseconds: see
// [Process]); a process pool replaces a worker that died or that
// [MaxTasksPerChild] retired the same way. The next spare starts in the
// background once the child has exited, or 2 ms after it was handed its
// task if it runs longer (at once for a pool worker), so that its
// start-up does not compete with the child for the processors.
//
// Spares move a start's exec and initialisation off the path from Start
// to the task, not off the processors: every child still costs a whole
// start-up's CPU time (several milliseconds in mp's test binary). A
// Process started now and then gains the most (BenchmarkProcessStartSpaced:
// about 4× faster); back-to-back starts gain what overlapping one child's
// run with the next one's start-up saves (about 1.6×); a process pool that
// replaces workers as fast as the processors can start them, as one with
// MaxTasksPerChild(1) under a steady load does, gains nothing, since it
// is bound by that CPU time (BenchmarkProcessPoolFreshWorker).
//
// Spares are started only once the program has started a child, on
// demand, never at program start: a program that starts no child, and a
// child that starts none of its own, has none. The cost is that many idle
// processes while the program runs: each holds the memory of a freshly
// started copy of the program (its resident size after initialisation:
// about 11 MB for mp's test binary, less for a small program) and no
// CPU, and two descriptors of the program's (its socket and a pidfd). A spare is not a
// child of the program's until it is handed a task: [ActiveChildren]
// does not list it. It dies with the program, however the program ends,
// and never delays its exit: it exits as soon as its connection to the
// program closes.
//
// A start takes a spare only when the spare is exactly what a fresh child
// would be: the program's environment, arguments and working directory
// are those the spare started with, the child's standard output and error
// are the program's own (Stdout nil or os.Stdout itself, Stderr nil: a
// Stderr that is set also keeps its tail for [ExitError]), and
// Process.Env is empty or sets only GOMAXPROCS,
// which the spare applies with runtime.GOMAXPROCS. Any other start execs
// the program afresh, as it would without spares: Process.Env may be read
// by package initialisation, which a spare has run already. Spares are
// supported on Unix; SetSpares does nothing on Windows.
//
// SetSpares is safe for concurrent use. Lowering the count ends the
// spares beyond it before SetSpares returns.
func SetSpares(n int) int {
	return spares.set(max(n, 0))
}

// setting is what a child inherits from the program at its start, besides
// the environment variables mp adds.
type setting struct {
	env, args      []string
	dir            string
	stdout, stderr *os.File
}

// sparesFromEnv is the number of spares MP_SPARES asks for, or
// defaultSpares when it is unset or not a number.
func sparesFromEnv() int {
	n, err := strconv.Atoi(os.Getenv("MP_SPARES"))
	if err != nil {
		return defaultSpares
	}
	return max(n, 0)
}
