package mp

import (
	"syscall"
	"unsafe"
)

// sysProcAttr makes the child lead its own process group, so that
// Terminate and Kill reach what it starts, and die with its parent.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
