//go:build !linux

package wire

import "errors"

// Pull copies n bytes at addr in the memory of process pid; it needs
// process_vm_readv(2), which only Linux has: elsewhere it fails.
func Pull(pid int, addr uint64, n int) ([]byte, error) {
	return nil, errors.ErrUnsupported
}

// CanPull reports whether Pull may read the memory of process pid: never
// outside Linux.
func CanPull(pid int, addr uint64, want *[16]byte) bool { return false }
