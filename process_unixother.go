//go:build unix && !linux

package mp

import "syscall"

// sysProcAttr makes the child lead its own process group, so that
// Terminate and Kill reach what it starts. There is no parent-death
// signal outside Linux: the child exits when its connection to the parent
// closes instead.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// blockUntilWaitable returns at once: without waitid(WNOWAIT) the window
// between reaping the child and marking it reaped, during which a signal
// could reach a reused pid, stays open for the few instructions between.
func blockUntilWaitable(int) {}
