// Command process is the Go twin of the seed's "普通多进程" (a plain child
// process):
//
//	from multiprocessing import Process
//	import os
//
//	def run_proc(name):
//	    print('Run child process %s (%s)...' % (name, os.getpid()))
//
//	if __name__=='__main__':
//	    print('Parent process %s.' % os.getpid())
//	    p = Process(target=run_proc, args=('test',))
//	    print('Child process will start.')
//	    p.start()
//	    p.join()
//	print('Child process end.')
//
// mp.Main() plays the part of the __main__ guard: in the child it runs
// runProc and exits, so the rest of main runs only in the parent.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mpgo/mp"
)

func runProc(_ context.Context, name string) (struct{}, error) {
	fmt.Printf("Run child process %s (%d)...\n", name, os.Getpid())
	return struct{}{}, nil
}

func init() { mp.Register(runProc) }

func main() {
	mp.Main()

	fmt.Printf("Parent process %d.\n", os.Getpid())
	p := mp.NewProcess(runProc, "test")
	fmt.Println("Child process will start.")
	if err := p.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := p.Join(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("Child process end.")
}
