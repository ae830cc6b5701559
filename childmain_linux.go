package mp

import "github.com/mpgo/mp/internal/wire"

// polledEnd returns a child's end of its socket, the descriptor fd, as a
// stream in the poller: on Linux a wire.SockStream, whose idle worker
// reads its next task itself (see wire.NewChildSockStream).
func polledEnd(fd int) (polledStream, error) {
	return wire.NewChildSockStream(fd, "mp-parent")
}
