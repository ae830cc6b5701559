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
	"fmt"
	"os"

	"github.com/mpgo/mp"
)

// pids runs in the child and reports what the child sees.
func pids(_ context.Context, _ struct{}) (mp.ProcessInfo, error) {
	return mp.CurrentProcess(), nil
}

func init() { mp.Register(pids) }

func main() {
	mp.Main()

	me := mp.CurrentProcess()
	fmt.Printf("%s: pid %d (os.Getpid() = %d)\n", me.Name, me.Pid, os.Getpid())

	p := mp.NewProcess(pids, struct{}{})
	if err := p.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := p.Join(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	child, _ := p.Result()
	fmt.Printf("%s: pid %d, parent pid %d, child: %v\n", child.Name, child.Pid, child.ParentPid, child.IsChild)
}
