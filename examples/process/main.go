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
	"log"
	"os"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	if err := seed.Process(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
