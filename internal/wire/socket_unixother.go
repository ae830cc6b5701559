//go:build unix && !linux

package wire

import "golang.org/x/sys/unix"

// sendNoWait writes bufs to the socket fd with one sendmsg that does not
// block. Where sendmsg has no MSG_NOSIGNAL, the runtime ignores SIGPIPE
// for descriptors other than standard output and error, so a write to a
// peer that hung up fails with EPIPE all the same.
func sendNoWait(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return unix.SendmsgN(fd, bufs[0], nil, nil, unix.MSG_DONTWAIT)
	}
	return unix.SendmsgBuffers(fd, bufs, nil, nil, unix.MSG_DONTWAIT)
}

// readNoWait reads the non-blocking descriptor fd.
func readNoWait(fd int, p []byte) (int, error) {
	return unix.Read(fd, p)
}
