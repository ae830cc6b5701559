//go:build unix

package mp_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/mpgo/mp/internal/wire"
)

// floorEnv names the floor a re-exec'd test binary serves instead of
// running tests: the raw wire between two Go processes, with none of mp.
const floorEnv = "MP_TEST_FLOOR"

// serveFloor runs the floor named by floorEnv on fd 3 and exits, when the
// test binary was started as one.
func serveFloor() {
	switch os.Getenv(floorEnv) {
	case "":
		return
	case "echo":
		// Echo 32-byte messages until EOF: the far end of a ping-pong,
		// in blocking system calls.
		echo(os.NewFile(3, "floor"))
	case "echo-poller":
		// The same through the runtime's poller, as mp's connections
		// read.
		if err := syscall.SetNonblock(3, true); err != nil {
			os.Exit(2)
		}
		echo(os.NewFile(3, "floor"))
	case "echo-pipes":
		// The same over a pair of pipes, fd 3 in and fd 4 out, through
		// the runtime's poller.
		for _, fd := range []int{3, 4} {
			if err := syscall.SetNonblock(fd, true); err != nil {
				os.Exit(2)
			}
		}
		echoPipes(os.NewFile(3, "floor-in"), os.NewFile(4, "floor-out"))
	case "conn":
		// A connection of mp's wire that answers "echo" calls, as a
		// pool worker answers a lone task (ReplyNow).
		if err := syscall.SetNonblock(3, true); err != nil {
			os.Exit(2)
		}
		c := wire.NewConn(os.NewFile(3, "floor"), 0, floorCodec{})
		done := make(chan struct{})
		c.OnBreak = func(error) { close(done) }
		c.Handle("echo", func(req *wire.Request) { req.ReplyNow(req.Msg, nil) })
		c.Serve()
		<-done
		os.Exit(0)
	}
	os.Exit(2)
}

// echo sends back every 32 bytes read from f, until f ends, then exits.
func echo(f *os.File) { echoPipes(f, f) }

// echoPipes writes to out every 32 bytes read from in, until in ends,
// then exits.
func echoPipes(in, out *os.File) {
	buf := make([]byte, 32)
	for {
		if _, err := io.ReadFull(in, buf); err != nil {
			os.Exit(0)
		}
		if _, err := out.Write(buf); err != nil {
			os.Exit(0)
		}
	}
}

// floorCodec carries errors as their messages, all a floor needs.
type floorCodec struct{}

func (floorCodec) EncodeError(err error) []byte { return []byte(err.Error()) }
func (floorCodec) DecodeError(b []byte) error   { return errors.New(string(b)) }

// startFloor starts this test binary as the floor child kind, joined to
// the returned end of a socket pair. The child runs with GOMAXPROCS=1, as
// a process pool's workers on a 2-core machine do.
func startFloor(b *testing.B, kind string) *os.File {
	fd := startFloorFD(b, kind)
	if err := syscall.SetNonblock(fd, true); err != nil {
		b.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "floor")
	b.Cleanup(func() { f.Close() })
	return f
}

// startFloorFD is startFloor giving the parent's end as a blocking
// descriptor, which the caller owns and must close in a cleanup
// registered after this call, as the child exits when its end closes.
func startFloorFD(b *testing.B, kind string) int {
	b.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	// Only the child is meant to have its end: a portable close-on-exec.
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	startFloorChild(b, kind, os.NewFile(uintptr(fds[1]), "floor-child"))
	return fds[0]
}

// startFloorChild starts this test binary as the floor child kind with
// theirs as its descriptors from 3 on, and closes our copies of them.
func startFloorChild(b *testing.B, kind string, theirs ...*os.File) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), floorEnv+"="+kind, "GOMAXPROCS=1")
	cmd.ExtraFiles = theirs
	cmd.Stderr = os.Stderr
	err := cmd.Start()
	for _, f := range theirs {
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := cmd.Wait(); err != nil {
			b.Errorf("floor child: %v", err)
		}
	})
}

// BenchmarkFloorPingPong is the latency floor of any call to a child
// process: 32 bytes written to a Go child over a socket pair and echoed
// back, one round trip at a time, the child in blocking system calls
// ("blocking") or through the runtime's poller ("poller"). Compare
// BenchmarkProcessPoolApply, which issue 16 holds to 1.5× "blocking".
// "pipes" is the same over a pair of pipes, both ends of each in the
// runtime's poller: not what mp uses, but the measure of what it could
// (see bench/RESULTS.md, "One Apply at a time, third pass").
func BenchmarkFloorPingPong(b *testing.B) {
	for _, kind := range []string{"echo", "echo-poller"} {
		name := map[string]string{"echo": "blocking", "echo-poller": "poller"}[kind]
		b.Run(name, func(b *testing.B) {
			f := startFloor(b, kind)
			pingPong(b, f, f)
		})
	}
	b.Run("pipes", benchFloorPipes)
}

// BenchmarkFloorConn is the round trip of mp's connection alone: a small
// call answered at once by a handler in a child process, with none of a
// pool's scheduling. Between BenchmarkFloorPingPong and
// BenchmarkProcessPoolApply, it tells the wire's share from the pool's.
func BenchmarkFloorConn(b *testing.B) {
	end, err := wire.ParentEnd(startFloorFD(b, "conn"), "floor")
	if err != nil {
		b.Fatal(err)
	}
	c := wire.NewConn(end, 0, floorCodec{})
	c.Serve()
	b.Cleanup(c.Close)
	m := wire.Message{Raw: []byte("12345678")}
	for b.Loop() {
		if _, err := c.Call(b.Context(), "echo", m); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFloorPipes is BenchmarkFloorPingPong over a pair of pipes.
func benchFloorPipes(b *testing.B) {
	toChild, ours, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	fromChild, theirs, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	// os.Pipe's ends are close-on-exec and in the poller; the child's
	// copies, made by the start, are blocking until it changes them.
	startFloorChild(b, "echo-pipes", toChild, theirs)
	b.Cleanup(func() { fromChild.Close() })
	b.Cleanup(func() { ours.Close() })
	pingPong(b, ours, fromChild)
}

// pingPong writes 32 bytes to w and reads 32 back from r, one round trip
// per iteration of b.
func pingPong(b *testing.B, w io.Writer, r io.Reader) {
	buf := make([]byte, 32)
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}
