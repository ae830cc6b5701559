//go:build unix && !linux

package wire

// sendNoSignal is 0 where sendmsg has no MSG_NOSIGNAL: the runtime ignores
// SIGPIPE for descriptors other than standard output and error, so the
// write fails with EPIPE all the same.
const sendNoSignal = 0
