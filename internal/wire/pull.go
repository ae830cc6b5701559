package wire

import "unsafe"

// PullAddr returns the address of b's first byte in this process, for a
// receiver to Pull. The sender must keep b reachable and unchanged until
// the receiver has pulled it.
func PullAddr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }
