package seed

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mpgo/mp"
)

// The tasks that cross into child processes are registered at package
// level, so that the child, which runs this package's init again, finds
// them by name.
func init() {
	mp.Register(pids)
	mp.Register(runProc)
}

// pids runs in the child of PID and reports what the child sees.
func pids(_ context.Context, _ struct{}) (mp.ProcessInfo, error) {
	return mp.CurrentProcess(), nil
}

// PID is the twin of §1, os.getpid(): it prints this process's pid, then
// starts a child that reports its own pid and its parent's.
func PID(ctx context.Context, w io.Writer) error {
	me := mp.CurrentProcess()
	fmt.Fprintf(w, "%s: pid %d (os.Getpid() = %d)\n", me.Name, me.Pid, os.Getpid())

	p := mp.NewProcess(pids, struct{}{})
	if err := p.Start(); err != nil {
		return err
	}
	if err := p.Join(ctx); err != nil {
		return err
	}
	child, err := p.Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: pid %d, parent pid %d, child: %v\n", child.Name, child.Pid, child.ParentPid, child.IsChild)
	return nil
}

// runProc is the child's task in Process: it prints from the child.
func runProc(_ context.Context, name string) (struct{}, error) {
	fmt.Printf("Run child process %s (%d)...\n", name, os.Getpid())
	return struct{}{}, nil
}

// Process is the twin of the seed's plain child process: the parent prints
// its pid, starts a child that prints its own, and joins it. The child's
// standard output is w.
func Process(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "Parent process %d.\n", os.Getpid())
	p := mp.NewProcess(runProc, "test")
	p.Stdout = w
	fmt.Fprintln(w, "Child process will start.")
	if err := p.Start(); err != nil {
		return err
	}
	if err := p.Join(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "Child process end.")
	return nil
}
