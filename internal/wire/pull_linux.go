package wire

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Pull copies n bytes at addr in the memory of process pid into a new
// slice, with one copy and no socket: process_vm_readv(2), which the
// kernel allows a process that may trace pid (the same user, no Yama
// restriction, no seccomp filter against it). The slice's memory is
// recycled as a large frame payload's is (see allocRaw), and is the
// caller's. It is the receiving half of a queue item that the sender
// leaves in its own memory rather than writing to the socket: a socket
// costs two copies, into the kernel and out of it.
func Pull(pid int, addr uint64, n int) ([]byte, error) {
	if n <= 0 || n > DefaultMaxFrame {
		return nil, fmt.Errorf("%w: %d bytes to pull", ErrMalformed, n)
	}
	b := allocRaw(n)
	if err := pullInto(pid, addr, b); err != nil {
		return nil, err
	}
	return b, nil
}

// pullInto fills b from addr in process pid.
func pullInto(pid int, addr uint64, b []byte) error {
	for len(b) > 0 {
		local := []unix.Iovec{{Base: &b[0]}}
		local[0].SetLen(len(b))
		remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
		got, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %d bytes of process %d: %w", len(b), pid, err)
		}
		if got == 0 {
			return fmt.Errorf("reading %d bytes of process %d: nothing read", len(b), pid)
		}
		// A partial read ends at a page that cannot be read; the next
		// call reports why.
		b, addr = b[got:], addr+uint64(got)
	}
	return nil
}

// CanPull reports whether Pull may read the memory of process pid: it
// reads the 16 bytes at addr there, which must equal want.
func CanPull(pid int, addr uint64, want *[16]byte) bool {
	if addr == 0 {
		return false
	}
	var got [16]byte
	if pullInto(pid, addr, got[:]) != nil {
		return false
	}
	return got == *want
}
