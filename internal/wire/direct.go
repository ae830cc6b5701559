package wire

import (
	"context"
	"errors"
)

// A goroutine waiting for the reply to its call may read it itself: see
// SockStream for why that matters, and Conn.ReadDirect.

// directStream is a stream whose incoming frames a goroutine other than
// the reader goroutine may read, one at a time (SockStream, on Linux).
// The right to read passes between the reader goroutine and a direct
// reader only between frames, with nothing buffered.
type directStream interface {
	// startReading takes the right to read for the reader goroutine,
	// if nobody has it; stopReading gives it up.
	startReading() bool
	stopReading()
	// awaitData waits, on the reader goroutine without the right to
	// read, until the stream has something to read.
	awaitData() error
	// beginDirect takes the right to read for a direct reader, if
	// nobody has it; endDirect gives it back, waking the reader
	// goroutine if the stream holds something.
	beginDirect() bool
	endDirect()
	// awaitDirect waits, on a direct reader, until the stream has
	// something to read, or fails once interruptDirect is called.
	awaitDirect() error
	interruptDirect()
}

// errInterrupted ends the wait of a direct reader whose caller stopped
// waiting.
var errInterrupted = errors.New("wire: direct read interrupted")

// ReadDirect reads and dispatches the connection's incoming frames on the
// calling goroutine until done is closed, ctx is done, or the reader
// goroutine is needed, if the stream allows it: a caller about to wait
// for a reply calls it first, so that the reply wakes the caller directly
// rather than through the reader goroutine (see SockStream for why that
// matters). It does nothing on other streams, before Serve, or while the
// reader goroutine is reading. The caller then waits as usual: done may
// not be closed when ReadDirect returns.
//
// Frames that are not the caller's are dispatched as the reader goroutine
// would, so handlers may run on the caller's goroutine; they must not
// block, as ever.
func (c *Conn) ReadDirect(ctx context.Context, done <-chan struct{}) {
	ds, ok := c.Stream.(directStream)
	if !ok || !c.serving.Load() || IsClosed(done) {
		return
	}
	c.directMu.Lock()
	defer c.directMu.Unlock()
	if IsClosed(c.Broken) || !ds.beginDirect() {
		return
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, ds.interruptDirect)
	}
	err := c.readDirect(ds, done)
	ds.endDirect()
	if stop != nil {
		stop()
	}
	if err != nil {
		// As the reader goroutine would; it sees the stream closed.
		c.Fail(err)
	}
}

// readDirect is the loop of ReadDirect. It returns an error only for what
// ends the connection: a wait that fails (interrupted, or the stream
// closed by somebody else) leaves the rest to the reader goroutine.
func (c *Conn) readDirect(ds directStream, done <-chan struct{}) error {
	for {
		if c.r.Buffered() == 0 {
			if IsClosed(done) {
				return nil
			}
			if err := ds.awaitDirect(); err != nil {
				return nil
			}
		}
		f, err := c.ReadFrame()
		if err == nil {
			err = c.Dispatch(f)
		}
		if err != nil {
			return err
		}
	}
}

// IsClosed reports whether c is closed, without blocking.
func IsClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
