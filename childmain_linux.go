package mp

import (
	"syscall"
	"time"
	"unsafe"

	"github.com/mpgo/mp/internal/wire"
)

// spinRead polls, for an idle pool worker whose last wait was short,
// until the parent's next frame is there, or or reports true, or
// wire.SpinLimit has passed since start (see wire.Spin): the frame then
// finds this process awake. It exists on Linux only, where the parent's
// caller polls for its reply too (wire.SockStream); a child that polled
// alone gained nothing.
func (s *childStream) spinRead(start time.Time, or func() bool) {
	var b [1]byte
	wire.Spin(start, func() bool {
		if or() {
			return true
		}
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		// Anything but "nothing yet" (data, the end of the stream or an
		// error) is the reader goroutine's to see to.
		return errno != syscall.EAGAIN
	})
}
