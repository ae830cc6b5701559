//go:build unix && !linux

package mp

import "syscall"

// parentDeathSignal reports whether a child dies by the kernel's hand when
// its parent dies, so that its connection need not be watched for that.
const parentDeathSignal = false

// sysProcAttr makes the child lead its own process group, so that
// Terminate and Kill reach what it starts. There is no parent-death
// signal outside Linux: the child exits when its connection to the parent
// closes instead.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// clearParentDeathSignal does nothing: there is no parent-death signal
// outside Linux.
func clearParentDeathSignal() {}

// socketPair returns the two ends of a new AF_UNIX stream socket pair,
// blocking and close-on-exec (the child's end is passed to it
// explicitly). Without SOCK_CLOEXEC, ForkLock keeps another goroutine's
// fork from inheriting them before they are marked.
func socketPair() (int, int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return -1, -1, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds[0], fds[1], nil
}

// peerIsParent accepts any peer: outside Linux the token that the parent
// wrote on the socket is the only proof that the socket is the parent's.
func peerIsParent(int) error { return nil }

// blockUntilWaitable returns at once: without waitid(WNOWAIT) the window
// between reaping the child and marking it reaped, during which a signal
// could reach a reused pid, stays open for the few instructions between.
func blockUntilWaitable(int) {}
