package wire

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SockStream is the parent's end of a socket to a child on Linux: a
// stream whose reads the goroutine waiting for a reply may make itself
// (see Conn.ReadDirect), so that the reply wakes that goroutine alone.
//
// Why: on a round trip to a child, the Go runtime's hand-off of a reply
// from the connection's reader goroutine to the goroutine waiting for it
// costs more than the wire itself. Readying the waiter makes the runtime
// wake a second thread for the idle processor, and the two then pass the
// work between them, each wake-up of a halted processor costing tens of
// microseconds on a virtual machine. A goroutine that waits in the poller
// for its own reply is woken by the kernel directly, as a blocking read
// is (BenchmarkFloorPingPong against BenchmarkFloorConn).
//
// The runtime's poller serves one goroutine waiting to read a descriptor,
// and cannot be told to stop waking it. So the reader goroutine waits
// elsewhere: on an epoll instance of our own, which watches the socket
// only while armed (EPOLLONESHOT) and is itself in the runtime's poller.
// A direct reader disarms it, so that the reply wakes only the goroutine
// that waits for it, in the runtime's poller, on the socket itself; when
// done, it arms it again, and whatever came meanwhile then wakes the
// reader goroutine at once. (A direct reader does not wait on an epoll
// instance of its own: a wake-up through one instance to another loses
// the kernel's hint that the waker is about to sleep, which lets the
// woken thread run on the waker's processor rather than wake another.)
//
// Reads are raw system calls that do not block (see pollReader); writes
// are the socket's own, as for any file in the poller.
type SockStream struct {
	f  *os.File // the socket, in the runtime's poller
	rc syscall.RawConn
	rd *epoller // the reader goroutine's waits

	// reading says who may read frames: nobody (0), the reader goroutine
	// (1) or a direct reader (2).
	reading atomic.Int32
	// interrupted is set by interruptDirect, which also makes the direct
	// reader's waits end at once, until the next beginDirect.
	interrupted atomic.Bool

	// The state of one read, for the functions made once below: only the
	// holder of the right to read reads. A direct read waits in the
	// runtime's poller (rc.Read with pollFn), others on rd (rc.Control
	// with tryFn).
	rp            []byte
	rn            int
	rerr          error
	tryFn         func(fd uintptr)
	pollFn        func(fd uintptr) bool
	directReading bool
	// readableFn reports whether the socket has something to read, or
	// has ended, without reading it.
	readableFn func(fd uintptr) bool
	// readable and readableNow poll the socket for a spinning direct
	// reader, through readableFn; lastWait is how long its last wait for
	// data took (see Spin).
	readable    bool
	readableNow func() bool
	lastWait    time.Duration

	try TryWriter // the socket's, through rc
}

var _ directStream = (*SockStream)(nil)

// newSockStream returns a SockStream on the connected stream socket fd,
// which it owns from then on; it closes fd if it fails.
func newSockStream(fd int, name string) (*SockStream, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	// No wait is known to be short yet: the first is not polled for.
	s := &SockStream{f: f, rc: rc, lastWait: SpinLimit}
	s.tryFn = func(fd uintptr) {
		for {
			s.rn, s.rerr = readNoWait(int(fd), s.rp)
			if s.rerr != unix.EINTR {
				return
			}
		}
	}
	s.pollFn = func(fd uintptr) bool {
		s.tryFn(fd)
		return s.rerr != unix.EAGAIN
	}
	s.readableFn = Readable
	peekFn := func(fd uintptr) { s.readable = Readable(fd) }
	s.readableNow = func() bool {
		s.readable = false
		return s.rc.Control(peekFn) != nil || s.readable || s.interrupted.Load()
	}
	s.try = NewRawTryWriter(rc)
	if s.rd, err = newEpoller(s, fd); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// Read reads what the socket holds, waiting for something if it holds
// nothing. Only the holder of the right to read calls it.
func (s *SockStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.rp = p
		var werr error
		if s.directReading {
			werr = s.rc.Read(s.pollFn)
		} else {
			werr = s.rc.Control(s.tryFn)
		}
		n, err := s.rn, s.rerr
		s.rp, s.rn, s.rerr = nil, 0, nil
		switch {
		case werr != nil && s.directReading && s.interrupted.Load() && errors.Is(werr, os.ErrDeadlineExceeded):
			// A direct reader was interrupted in the middle of a frame,
			// which it must read to the end: it stops at the next frame.
			s.f.SetReadDeadline(time.Time{})
			continue
		case werr != nil:
			return 0, werr
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err != unix.EAGAIN:
			return 0, err
		}
		if err := s.rd.await(unix.EPOLLIN | unix.EPOLLRDHUP); err != nil {
			return 0, err
		}
	}
}

// Write writes p whole, waiting for room in the socket as need be.
func (s *SockStream) Write(p []byte) (int, error) { return s.f.Write(p) }

// TryWrite writes as much of bufs as the socket takes at once.
func (s *SockStream) TryWrite(bufs [][]byte) (int, error) { return s.try.TryWrite(bufs) }

// SetReadDeadline bounds the waits of the reader goroutine's reads.
func (s *SockStream) SetReadDeadline(t time.Time) error { return s.rd.f.SetReadDeadline(t) }

// SetWriteDeadline bounds the waits of writes for room.
func (s *SockStream) SetWriteDeadline(t time.Time) error { return s.f.SetWriteDeadline(t) }

// SyscallConn returns the socket's raw connection, for a look at it
// (Control); reads and writes go through the SockStream.
func (s *SockStream) SyscallConn() (syscall.RawConn, error) { return s.rc, nil }

// Close closes the socket; waits under way end with an error.
func (s *SockStream) Close() error {
	s.rd.f.Close()
	return s.f.Close()
}

// startReading makes the reader goroutine the reader if nobody reads.
func (s *SockStream) startReading() bool { return s.reading.CompareAndSwap(0, 1) }

// stopReading gives up the reader goroutine's right to read.
func (s *SockStream) stopReading() { s.reading.Store(0) }

// awaitData waits, on the reader goroutine, until the socket has
// something to read. The reader's epoll instance is armed only if nobody
// reads: a direct reader arms it when it is done.
func (s *SockStream) awaitData() error {
	if s.reading.Load() == 0 {
		return s.rd.await(unix.EPOLLIN | unix.EPOLLRDHUP)
	}
	return s.rd.wait()
}

// beginDirect makes the caller the reader, if nobody reads.
func (s *SockStream) beginDirect() bool {
	if !s.reading.CompareAndSwap(0, 2) {
		return false
	}
	if s.interrupted.Swap(false) {
		s.f.SetReadDeadline(time.Time{})
	}
	s.rd.disarm()
	s.directReading = true
	return true
}

// awaitDirect waits, on a direct reader, until the socket has something
// to read; it fails with errInterrupted once interruptDirect is called. It
// polls first while its waits are short (see Spin).
func (s *SockStream) awaitDirect() error {
	if s.interrupted.Load() {
		return errInterrupted
	}
	start := time.Now()
	if SpinWorth(s.lastWait) && Spin(start, s.readableNow) {
		s.lastWait = time.Since(start)
		if s.interrupted.Load() {
			return errInterrupted
		}
		// Readable, or closed, which the read that follows reports.
		return nil
	}
	err := s.rc.Read(s.readableFn)
	s.lastWait = time.Since(start)
	if err != nil && s.interrupted.Load() {
		return errInterrupted
	}
	return err
}

// interruptDirect ends the wait of a direct reader, and makes its later
// waits end at once, until the next beginDirect. It may be called from
// any goroutine, at any time: late, it only makes a later direct reader
// give up at once, which costs that one its speed.
func (s *SockStream) interruptDirect() {
	s.interrupted.Store(true)
	s.f.SetReadDeadline(time.Unix(1, 0))
}

// endDirect gives the reading back to the reader goroutine, which is
// woken if the socket holds something.
func (s *SockStream) endDirect() {
	s.directReading = false
	s.reading.Store(0)
	s.rd.arm(unix.EPOLLIN | unix.EPOLLRDHUP)
}

// epoller is an epoll instance that watches one socket, for events
// armed one wait at a time (EPOLLONESHOT). Its own descriptor is in the
// runtime's poller, so that a goroutine waits on it there.
type epoller struct {
	s  *SockStream
	fd int
	f  *os.File
	rc syscall.RawConn
	ev [1]unix.EpollEvent
	fn func(fd uintptr) bool
	// events is what arm arms, read by armFn, which is made once so
	// that arming allocates nothing.
	events atomic.Uint32
	armFn  func(sock uintptr)
}

func newEpoller(s *SockStream, sock int) (*epoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking before NewFile, which then puts it in the poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Registered disarmed: EPOLLONESHOT with no events.
	if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, sock, &unix.EpollEvent{Events: unix.EPOLLONESHOT}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	e := &epoller{s: s, fd: fd, f: os.NewFile(uintptr(fd), "mp-epoll")}
	e.armFn = func(sock uintptr) {
		ev := unix.EpollEvent{Events: e.events.Load() | unix.EPOLLONESHOT}
		// Raw, as neither call blocks: see pollReader.
		syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(e.fd), unix.EPOLL_CTL_MOD, sock, uintptr(unsafe.Pointer(&ev)), 0, 0)
	}
	if e.rc, err = e.f.SyscallConn(); err != nil {
		e.f.Close()
		return nil, err
	}
	e.fn = func(fd uintptr) bool {
		for {
			n, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&e.ev[0])), 1, 0, 0, 0)
			if errno == unix.EINTR {
				continue
			}
			// An error (none is expected) ends the wait too: the next
			// read says what is wrong.
			return n > 0 || errno != 0
		}
	}
	return e, nil
}

// arm makes the next of events on the socket wake a wait; if one has
// happened already, the wait ends at once.
//
// The reader goroutine may arm its instance while a direct reader
// disarms it. Whichever wins, nothing is lost: disarmed, the reader
// goroutine is woken when the direct reader arms it again; armed, it is
// woken once in vain, finds that somebody reads, and waits without
// arming (see awaitData).
func (e *epoller) arm(events uint32) {
	e.events.Store(events)
	e.s.rc.Control(e.armFn)
}

// disarm stops events on the socket from waking a wait.
func (e *epoller) disarm() { e.arm(0) }

// await arms events and waits for one.
func (e *epoller) await(events uint32) error {
	e.arm(events)
	return e.wait()
}

// wait waits, in the runtime's poller, for an armed event.
func (e *epoller) wait() error { return e.rc.Read(e.fn) }

// ParentEnd returns the stream of a parent's end of a socket to a child:
// on Linux a SockStream.
func ParentEnd(fd int, name string) (Stream, error) {
	return newSockStream(fd, name)
}
