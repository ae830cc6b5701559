package mp

import (
	"os"
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
// reaping it. Where the kernel has pidfds (Linux 5.3 and later) it waits
// in the runtime's poller, so that a child being waited for holds no
// thread, and the goroutine that reaps it wakes on whichever thread the
// poller runs on, as Join's goroutine does: about 3% off starting a
// process (BenchmarkProcessStartSmallProgram, 10 runs alternated with
// the blocking wait: medians 1.401 and 1.441 times a minimal exec).
// Elsewhere it blocks its thread in waitid, as os/exec does internally.
func blockUntilWaitable(pid int) {
	if waitPidfd(pid) {
		return
	}
	var siginfo [16]uint64 // a siginfo_t is 128 bytes
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&siginfo)), syscall.WEXITED|wNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// The waitid arguments the syscall package lacks.
const (
	pPID         = 1
	pPIDFD       = 3
	wNOWAIT      = 0x1000000
	sysPidfdOpen = 434 // the same number on every Linux architecture
)

// waitPidfd waits in the poller until the child pid has exited, without
// reaping it. It reports false, when the kernel cannot open a pidfd for
// pid or wait on one, and the child may then still be running.
func waitPidfd(pid int) bool {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return false
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		syscall.Close(int(fd))
		return false
	}
	f := os.NewFile(fd, "mp-pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	// A pidfd polls readable once its process has exited; until then
	// the check below reports false, and rc.Read waits for that.
	var failed syscall.Errno
	err = rc.Read(func(fd uintptr) bool {
		for {
			// The kernel sets si_signo to SIGCHLD when the child is
			// waitable and writes only zeros otherwise.
			var siginfo [16]uint64
			_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPIDFD, fd, uintptr(unsafe.Pointer(&siginfo)), syscall.WEXITED|syscall.WNOHANG|wNOWAIT, 0, 0)
			switch {
			case errno == syscall.EINTR:
				continue
			case errno != 0:
				// Linux 5.3 has pidfd_open but not waitid on a pidfd
				// (EINVAL); the caller then waits the old way.
				failed = errno
				return true
			}
			return siginfo != [16]uint64{}
		}
	})
	return err == nil && failed == 0
}
