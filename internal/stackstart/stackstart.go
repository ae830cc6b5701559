// Package stackstart grows the main goroutine's stack to 8 KiB at the
// start of package initialisation, in one step, before the initialisers
// that would otherwise grow it in several.
//
// Every process mp starts runs the program's package initialisation again.
// The main goroutine starts with a 2 KiB stack, and the initialisers of
// internal/godebug and encoding/gob, deep in reflection, grow it twice
// more; each growth copies the stack and walks every frame on it, looking
// up each function's stack maps in pages of the binary the new process
// has not touched yet. Growing it here, while the stack holds only a few
// frames, spares those copies, a few percent of a child's start-up
// (BenchmarkProcessStartSmallProgram in package mp). A larger stack does
// worse: the frame that grows it is cleared, and a larger one
// touches more memory than the copies cost.
//
// The package imports nothing, so that the initialisation order of the
// Go specification (packages sorted by import path, each initialised once
// its imports are) runs it before any package that imports something;
// TestStackStartRunsFirst checks that it precedes encoding/gob.
package stackstart

// grow uses a frame of 6 KiB, so that the runtime grows the stack to the
// next power of two that holds it, in one copy.
//
//go:noinline
func grow(i int) byte {
	var frame [6 << 10]byte
	frame[i] = byte(i)
	return frame[i/2]
}

// sink keeps grow from being optimised away, and gives it an index the
// compiler cannot fold.
var sink byte

func init() { sink = grow(int(sink) + 1) }
