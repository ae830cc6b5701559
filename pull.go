package mp

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/wire"
)

// pullProbe is what a child reads in its parent's memory, at the address
// a queue handle offers, to learn whether it may pull the queue's large
// items from there (see "Pulled items" in xqueue.go). The child compares
// it with its own copy: parent and child run the same binary.
var pullProbe = [16]byte{'m', 'p', ' ', 'p', 'u', 'l', 'l', ' ', 'p', 'r', 'o', 'b', 'e', 0xa5, 0x5a, 1}

// pullOffer returns the pull field of a queue handle: the address of
// pullProbe, or 0 where the owner sends every item in the socket: outside
// Linux, and when the environment variable MP_PULL is "0".
func pullOffer() uint64 {
	if runtime.GOOS != "linux" || os.Getenv("MP_PULL") == "0" {
		return 0
	}
	return wire.PullAddr(pullProbe[:])
}

// parentPid is, in a child, the pid of the parent, which the child
// checked at its start (peerIsParent).
var parentPid int

var pullOK struct {
	once sync.Once
	ok   bool
}

// canPull reports whether this child may pull items from its parent, whose
// handle offered the address offer (see pullOffer). It reads the probe
// once: every handle a child decodes comes from the one parent.
func canPull(offer uint64) bool {
	if offer == 0 {
		return false
	}
	pullOK.once.Do(func() {
		pullOK.ok = parentPid > 0 && wire.CanPull(parentPid, offer, &pullProbe)
	})
	return pullOK.ok
}

// pulled counts the queue items this process pulled, for tests to see
// which way items came.
var pulled atomic.Int64
