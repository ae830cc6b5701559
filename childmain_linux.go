package mp

import (
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// spinRead polls, for an idle pool worker whose last wait was short,
// until the parent's next frame is there, or or reports true, or
// wire.SpinLimit has passed since start (see wire.Spin): the frame then
// finds this process awake. It exists on Linux only, where the parent's
// caller polls for its reply too (wire.SockStream); a child that polled
// alone gained nothing.
func (s *childStream) spinRead(start time.Time, or func() bool) {
	// Anything but "nothing yet" (data, the end of the stream or an
	// error) is the reader goroutine's to see to.
	wire.Spin(start, func() bool { return or() || wire.Readable(uintptr(s.fd)) })
}
