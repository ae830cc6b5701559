package mp

import (
	"syscall"
	"unsafe"
)

// parentDeathSignal reports whether a child dies by the kernel's hand when
// its parent dies, so that its connection need not be watched for that.
const parentDeathSignal = true

// sysProcAttr makes the child lead its own process group, so that
// Terminate and Kill reach what it starts, and die with its parent.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// socketPair returns the two ends of a new AF_UNIX stream socket pair,
// blocking and close-on-exec from the start, so that no other goroutine's
// fork can inherit them (the child's end is passed to it explicitly).
func socketPair() (int, int, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	return fds[0], fds[1], nil
}

// blockUntilWaitable waits until the child pid has exited, without
// reaping it, as os/exec does internally.
func blockUntilWaitable(pid int) {
	const pPID, wNOWAIT = 1, 0x1000000
	var siginfo [16]uint64 // a siginfo_t is 128 bytes
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&siginfo)), syscall.WEXITED|wNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
