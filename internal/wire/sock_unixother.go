//go:build unix && !linux

package wire

import (
	"os"
	"syscall"
)

// ParentEnd returns the stream of a parent's end of a socket to a child:
// outside Linux the socket, non-blocking, as a file in the runtime's
// poller. (Direct reads, see SockStream, are Linux-only.)
func ParentEnd(fd int, name string) (Stream, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
