package wire

import (
	"runtime"
	"time"
)

// A round trip to a child process whose two processes both sleep while
// the other works costs two wake-ups of a sleeping processor, and on a
// virtual machine each costs more than the rest of the round trip: on a
// 2-vCPU VM a sequential Apply took 3× the raw ping-pong across two vCPUs
// and 1.65× on one (bench/RESULTS.md, "One Apply at a time"). So the two
// goroutines that wait for the next frame of a quick exchange poll for it
// a little before they sleep: a caller of Apply reading its own reply
// (SockStream), and an idle pool worker waiting for its next task (package
// mp's serveChild). Each polls only while its last wait was short (see
// SpinWorth), so that a program whose calls are slow, or come seldom, does
// not pay for the polling, and a change of pace costs one wasted poll at
// most.

// SpinLimit is the longest a goroutine polls for its next frame before it
// sleeps.
const SpinLimit = 50 * time.Microsecond

// canSpin says whether polling can pay at all: with one processor, the
// peer cannot run while we poll.
var canSpin = runtime.NumCPU() > 1

// SpinWorth reports whether a wait is worth polling for, given how long
// the last one took, polled for or not. A wait that ended within SpinLimit
// means the peer answers quickly, and polling spares the wake-up; one that
// did not means the peer sleeps too, or works, and polling would only burn
// the processor: an Apply every millisecond costs as much CPU as before
// polling, and a tight loop of them less (bench/RESULTS.md).
func SpinWorth(last time.Duration) bool { return canSpin && last < SpinLimit }

// spinYield is how many polls Spin makes between yields of the processor:
// a yield costs more than a poll, and one every few microseconds is enough
// to let the process's other goroutines run.
const spinYield = 64

// Spin calls ready until it reports true or SpinLimit has passed since
// start, and reports whether it did. It yields the processor every
// spinYield calls, so that the process's other goroutines run meanwhile.
func Spin(start time.Time, ready func() bool) bool {
	for i := 1; ; i++ {
		if ready() {
			return true
		}
		if time.Since(start) >= SpinLimit {
			return false
		}
		if i%spinYield == 0 {
			runtime.Gosched()
		}
	}
}
