package mp

import (
	"context"
	"encoding/binary"
	"maps"
	"os"
	"time"
)

// A child started with MP_TEST_STALL=1 in its environment stalls in
// package initialisation, before Main: to its parent it looks like a
// program that never calls Main.
func init() {
	if os.Getenv("MP_TEST_STALL") == "1" {
		time.Sleep(time.Minute)
	}
}

// SetHelloTimeout changes how long Start waits for a child's handshake,
// and returns the function that restores it.
func SetHelloTimeout(d time.Duration) (restore func()) {
	old := helloTimeout
	helloTimeout = d
	return func() { helloTimeout = old }
}

// AllowRegisterForTest lets a test call Register although Main has run,
// and returns the function that restores the guard and forgets what the
// test registered, so that the test can run again.
func AllowRegisterForTest() (restore func()) {
	registry.mu.Lock()
	byPC, byName := maps.Clone(registry.byPC), maps.Clone(registry.byName)
	registry.mu.Unlock()
	mainCalled.Store(false)
	return func() {
		mainCalled.Store(true)
		registry.mu.Lock()
		registry.byPC, registry.byName = byPC, byName
		registry.mu.Unlock()
	}
}

// RoundTrip encodes v as it would cross to a child and decodes it again.
func RoundTrip[T any](v T) (T, []byte, error) {
	c := codecFor[T]()
	b, err := c.encode(v)
	if err != nil {
		var zero T
		return zero, nil, err
	}
	out, err := c.decode(b)
	return out, b, err
}

// CrossError sends err through the error encoding of a task's reply.
func CrossError(err error) error { return decodeError(encodeError(err)) }

// BadFrame is a task that, in the child, writes a frame the parent must
// reject ("garbage": an unknown kind; "oversized": a length over the limit)
// and then waits to be dropped. It is the test hook for a misbehaving child.
var BadFrame = Register(func(ctx context.Context, kind string) (struct{}, error) {
	var b []byte
	switch kind {
	case "garbage":
		b = binary.BigEndian.AppendUint32(nil, 13)
		b = append(b, 200, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0)
	case "oversized":
		b = binary.BigEndian.AppendUint32(nil, 1<<31)
	}
	if _, err := parentConn.Stream.Write(b); err != nil {
		return struct{}{}, err
	}
	<-ctx.Done()
	return struct{}{}, nil
})
