//go:build unix

package mp_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mpgo/mp"
)

// The large-item shape of issue 16: the parent Puts largeItems items of
// largeSize bytes into a JoinableQueue of capacity 16, one child process
// Gets each and marks it done (keeping nothing), the parent Joins the
// queue, closes it and joins the child. Every op starts its own child, the
// floor's too, so that the figures compare directly.
const (
	largeItems = 1000
	largeSize  = 1 << 20
)

// largeItem is the struct item of the shape: it crosses through gob.
type largeItem struct {
	Seq  int
	Data []byte
}

// drainLarge gets items of any type until q is closed, marks each done and
// returns the number of bytes it got, measured by size.
func drainLarge[T any](ctx context.Context, q *mp.JoinableQueue[T], size func(T) int) (int, error) {
	n := 0
	for {
		v, err := q.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += size(v)
		q.TaskDone()
	}
}

var (
	drainLargeString = mp.Register(func(ctx context.Context, q *mp.JoinableQueue[string]) (int, error) {
		return drainLarge(ctx, q, func(s string) int { return len(s) })
	})
	drainLargeStruct = mp.Register(func(ctx context.Context, q *mp.JoinableQueue[largeItem]) (int, error) {
		return drainLarge(ctx, q, func(v largeItem) int { return len(v.Data) })
	})
)

// BenchmarkXQueueLarge is the shape above for []byte, string and struct
// items, beside its floor: the same bytes written in 1 MiB writes of one
// buffer into a socketpair whose other end a child process (this test
// binary, re-executed) reads into one reused 1 MiB buffer. floor-fresh
// reads every MiB into a new slice instead, as a receiver whose program
// owns each item must. Each reports MB/s, so one run gives the ratios.
func BenchmarkXQueueLarge(b *testing.B) {
	b.Run("floor", func(b *testing.B) { benchLargeFloor(b, "reuse") })
	b.Run("floor-fresh", func(b *testing.B) { benchLargeFloor(b, "fresh") })
	payload := make([]byte, largeSize)
	for i := range payload {
		payload[i] = byte(i)
	}
	b.Run("bytes", func(b *testing.B) {
		benchLarge(b, drainBytes, func(int) []byte { return payload })
	})
	s := string(payload)
	b.Run("string", func(b *testing.B) {
		benchLarge(b, drainLargeString, func(int) string { return s })
	})
	b.Run("struct", func(b *testing.B) {
		benchLarge(b, drainLargeStruct, func(i int) largeItem { return largeItem{Seq: i, Data: payload} })
	})
}

// benchLarge runs the shape with items made by item and consumed by
// drain in the child.
func benchLarge[T any](b *testing.B, drain mp.Func[*mp.JoinableQueue[T], int], item func(i int) T) {
	ctx := b.Context()
	b.SetBytes(largeItems * largeSize)
	for b.Loop() {
		q := mp.NewJoinableQueue[T](16)
		p := mp.NewProcess(drain, q)
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		for i := range largeItems {
			if err := q.Put(ctx, item(i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := q.Join(ctx); err != nil {
			b.Fatal(err)
		}
		q.Close()
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
		if n, err := p.Result(); err != nil || n != largeItems*largeSize {
			b.Fatalf("the child got %d bytes, %v; want %d", n, err, largeItems*largeSize)
		}
	}
}

// benchLargeFloor writes the shape's bytes in 1 MiB writes of one buffer
// into a socketpair whose other end is a child process's stdin; the child
// (runSink) reads it until end of file, into one reused buffer or, with
// mode "fresh", into a new slice per MiB, and prints the count.
func benchLargeFloor(b *testing.B, mode string) {
	payload := make([]byte, largeSize)
	b.SetBytes(largeItems * largeSize)
	for b.Loop() {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
		w, r := os.NewFile(uintptr(fds[0]), "w"), os.NewFile(uintptr(fds[1]), "r")
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), sinkEnv+"="+mode)
		cmd.Stdin = r
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		r.Close()
		for range largeItems {
			if _, err := w.Write(payload); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(out.String())); n != largeItems*largeSize {
			b.Fatalf("the child read %q bytes; want %d", out.String(), largeItems*largeSize)
		}
	}
}
