package wire

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendNoWait writes bufs to the socket fd with one sendmsg that does not
// block, as a raw system call (see pollReader). MSG_NOSIGNAL keeps a
// write to a peer that hung up from raising SIGPIPE; it fails with EPIPE
// instead, as the runtime's own writes do.
func sendNoWait(fd int, bufs [][]byte) (int, error) {
	var iov [8]unix.Iovec
	if len(bufs) > len(iov) {
		return unix.SendmsgBuffers(fd, bufs, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	}
	k := 0
	for _, b := range bufs {
		if len(b) > 0 {
			iov[k].Base = &b[0]
			iov[k].SetLen(len(b))
			k++
		}
	}
	if k == 0 {
		return 0, nil
	}
	var msg unix.Msghdr
	msg.Iov = &iov[0]
	msg.SetIovlen(k)
	n, _, errno := syscall.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// readNoWait reads the non-blocking descriptor fd as a raw system call
// (see pollReader).
func readNoWait(fd int, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Readable reports whether the socket fd has something to read, or has
// ended or failed, without reading it or waiting: a peek with a raw system
// call (see pollReader).
func Readable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		if errno != unix.EINTR {
			// RawSyscall's first result is -1 on failure, so errno
			// alone tells "nothing yet" from the rest.
			return errno != unix.EAGAIN
		}
	}
}
