package mp

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// parentDeathSignal reports whether a child dies by the kernel's hand when
// its parent dies, so that its connection need not be watched for that.
const parentDeathSignal = true

// sysProcAttr makes the child lead its own process group, so that
// Terminate and Kill reach what it starts, and die with its parent.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// clearParentDeathSignal clears this process's parent-death signal: a
// spare outlives the thread that started it (see spareSet), and watches
// its connection to the parent instead.
func clearParentDeathSignal() {
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
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

// peerIsParent reports whether the socket fd was made by this process's
// parent. A token read from the environment may have leaked to anyone
// (a log, a shell's history, a copied container setting); the kernel's
// record of who made the socket cannot.
func peerIsParent(fd int) error {
	cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return fmt.Errorf("fd %d's peer: %w", fd, err)
	}
	if ppid := os.Getppid(); int(cred.Pid) != ppid {
		return fmt.Errorf("fd %d's peer is process %d, not this process's parent %d", fd, cred.Pid, ppid)
	}
	return nil
}

// blockUntilWaitable waits until the child pid has exited, without
// reaping it. Where the kernel has pidfds (Linux 5.4 and later) it waits
// in the runtime's poller, so that a child being waited for holds no
// thread: a program running a hundred children does not keep a hundred
// threads blocked in waitid. Starting a process takes as long either way
// (BenchmarkProcessStartSmallProgram). Elsewhere it blocks its thread in waitid, as os/exec
// does internally.
func blockUntilWaitable(pid int) {
	if waitPidfd(pid) {
		return
	}
	var info unix.Siginfo
	for {
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
			return
		}
	}
}

// waitPidfd waits in the poller until the child pid has exited, without
// reaping it. It reports false when the kernel cannot open a pidfd for
// pid or wait on one, and the child may then still be running.
func waitPidfd(pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return false
	}
	f := os.NewFile(uintptr(fd), "mp-pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	// A pidfd polls readable once its process has exited; until then
	// the check below reports false, and rc.Read waits for that.
	var failed error
	err = rc.Read(func(fd uintptr) bool {
		for {
			// The kernel sets Signo to SIGCHLD when the child is waitable
			// and leaves it 0 otherwise.
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				// Linux 5.3 has pidfd_open but not waitid on a pidfd
				// (EINVAL); the caller then waits the old way.
				failed = err
				return true
			}
			return info.Signo != 0
		}
	})
	return err == nil && failed == nil
}
