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
// the runtime's poller serialises with the stream's own writes; on Linux
// with a raw system call, for the reason given at pollReader. Its
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
		n, err := sendNoWait(fd, bufs)
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

// readerOf returns what a Reader on stream r should read from: for a
// socket, reads through its raw descriptor (see pollReader); else r.
func readerOf(r io.Reader) io.Reader {
	if _, ok := r.(directStream); ok {
		// It waits in the poller itself, and is no os.File.
		return r
	}
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && isSocket(rc) {
			return NewPollReader(rc)
		}
	}
	return r
}

// pollReader reads a non-blocking socket with a read that cannot block,
// waiting in the runtime's poller when nothing is there. On Linux that
// read is a raw system call: unlike the runtime's own reads, it does not
// tell the scheduler that a system call is under way, and so does not wake
// the runtime's monitor thread, which on a round trip to a child process
// is a wake-up and two thread switches more in each process. As for
// rawTryWriter, its function is made once.
type pollReader struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// NewPollReader returns a reader on the non-blocking socket behind rc.
func NewPollReader(rc syscall.RawConn) io.Reader {
	r := &pollReader{rc: rc}
	r.fn = func(fd uintptr) bool {
		for {
			r.n, r.err = readNoWait(int(fd), r.p)
			if r.err != unix.EINTR {
				return r.err != unix.EAGAIN
			}
		}
	}
	return r
}

func (r *pollReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p = p
	rerr := r.rc.Read(r.fn)
	n, err := r.n, r.err
	r.p, r.n, r.err = nil, 0, nil
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
