// Command pid is the Go twin of the seed's "获得当前进程ID" (get the current
// process ID):
//
//	import os
//	os.getpid()
//
// It prints its own pid, then starts a child process that reports its pid
// and its parent's, as Python's os.getpid() and os.getppid() would.
package main

import (
	"context"
	"log"
	"os"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	if err := seed.PID(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
