//go:build unix

package wire

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// tryWriterOf returns w as a TryWriter: itself if it is one, a socket's
// descriptor written with MSG_DONTWAIT if it can give one, else nil.
func tryWriterOf(w io.Writer) TryWriter {
	if t, ok := w.(TryWriter); ok {
		return t
	}
	if sc, ok := w.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && isSocket(rc) {
			return NewRawTryWriter(rc)
		}
	}
	return nil
}

// isSocket reports whether rc is a socket, the only kind of descriptor
// that sendmsg writes.
func isSocket(rc syscall.RawConn) bool {
	var st unix.Stat_t
	var err error
	if cerr := rc.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) }); cerr != nil || err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFSOCK
}

// rawTryWriter tries writes on a socket through its raw descriptor, which
// the runtime's poller serialises with the stream's own writes. Its
// function is made once, as a closure per write would be allocated: the
// Writer makes one TryWrite at a time.
type rawTryWriter struct {
	rc   syscall.RawConn
	bufs [][]byte
	n    int
	err  error
	fn   func(fd uintptr) bool
}

// NewRawTryWriter returns a TryWriter on the socket behind rc.
func NewRawTryWriter(rc syscall.RawConn) TryWriter {
	t := &rawTryWriter{rc: rc}
	t.fn = func(fd uintptr) bool {
		t.n, t.err = TrySend(int(fd), t.bufs)
		return true
	}
	return t
}

func (t *rawTryWriter) TryWrite(bufs [][]byte) (int, error) {
	t.bufs = bufs
	werr := t.rc.Write(t.fn)
	n, err := t.n, t.err
	t.bufs, t.n, t.err = nil, 0, nil
	if werr != nil {
		return 0, werr
	}
	return n, err
}

// TrySend writes bufs to the socket fd with one sendmsg that does not
// block, and returns how many bytes it took: 0 with no error when the
// socket's buffer is full.
func TrySend(fd int, bufs [][]byte) (int, error) {
	for {
		var n int
		var err error
		if len(bufs) == 1 {
			// The common case, one buffer of small frames, needs no
			// vector, whose building allocates.
			n, err = unix.SendmsgN(fd, bufs[0], nil, nil, unix.MSG_DONTWAIT|sendNoSignal)
		} else {
			n, err = unix.SendmsgBuffers(fd, bufs, nil, nil, unix.MSG_DONTWAIT|sendNoSignal)
		}
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, err
	}
}
