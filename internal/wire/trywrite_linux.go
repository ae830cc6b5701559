package wire

import "golang.org/x/sys/unix"

// sendNoSignal keeps a write to a peer that hung up from raising SIGPIPE;
// it fails with EPIPE instead, as the runtime's own writes do.
const sendNoSignal = unix.MSG_NOSIGNAL
