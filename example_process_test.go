//go:build unix

package mp_test

import (
	"context"
	"fmt"
	"os"

	"github.com/mpgo/mp"
)

// runProc is the seed's run_proc: it prints from the child process, whose
// standard output is the parent's own.
func runProc(_ context.Context, name string) (struct{}, error) {
	fmt.Printf("Run child process %s...\n", name)
	return struct{}{}, nil
}

// childPid reports the child's view of itself.
func childPid(_ context.Context, _ struct{}) (mp.ProcessInfo, error) {
	return mp.CurrentProcess(), nil
}

func init() {
	mp.Register(runProc)
	mp.Register(childPid)
}

// This is Python's
//
//	p = Process(target=run_proc, args=('test',))
//	p.start()
//	p.join()
//
// run_proc runs in a real child process; what it prints appears in the
// parent's output because the child writes to the parent's stdout.
func ExampleProcess() {
	p := mp.NewProcess(runProc, "test")
	fmt.Println("Child process will start.")
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Child process end.")
	// Output:
	// Child process will start.
	// Run child process test...
	// Child process end.
}

// CurrentProcess is Python's os.getpid() and current_process(): here a
// child reports its own pid and its parent's.
func ExampleCurrentProcess() {
	me := mp.CurrentProcess()
	fmt.Println("parent:", me.Name, me.Pid == os.Getpid(), me.IsChild)

	p := mp.NewProcess(childPid, struct{}{})
	p.Name = "worker"
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	child, _ := p.Result()
	fmt.Println("child:", child.Name, child.Pid == p.Pid(), child.IsChild)
	fmt.Println("different pids:", child.Pid != me.Pid)
	fmt.Println("child's parent is this process:", child.ParentPid == me.Pid)
	// Output:
	// parent: MainProcess true false
	// child: worker true true
	// different pids: true
	// child's parent is this process: true
}

// Terminate ends a child that would run for an hour; its exit code follows
// Python: minus the signal number.
func ExampleProcess_Terminate() {
	p := mp.NewProcess(napUntilCancelled, 3600e9)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("alive:", p.Alive())
	_ = p.Terminate()
	<-p.Done()
	code, _ := p.ExitCode()
	fmt.Println("alive:", p.Alive(), "exit code:", code)
	// Output:
	// alive: true
	// alive: false exit code: -15
}
