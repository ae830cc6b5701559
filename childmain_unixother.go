//go:build unix && !linux

package mp

import (
	"io"
	"os"
	"syscall"

	"github.com/mpgo/mp/internal/wire"
)

// polledEnd returns a child's end of its socket, the descriptor fd, as a
// stream in the poller: outside Linux the socket as a file, read and
// tried for writes through its raw descriptor.
func polledEnd(fd int) (polledStream, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "mp-parent")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &polledFile{File: f, try: wire.NewRawTryWriter(rc), rd: wire.NewPollReader(rc)}, nil
}

// polledFile is a socket file whose reads and tried writes go through
// its raw descriptor.
type polledFile struct {
	*os.File
	try wire.TryWriter
	rd  io.Reader
}

func (f *polledFile) Read(b []byte) (int, error)          { return f.rd.Read(b) }
func (f *polledFile) TryWrite(bufs [][]byte) (int, error) { return f.try.TryWrite(bufs) }
