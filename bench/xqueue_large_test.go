//go:build unix

package bench

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

// BenchmarkXQueueLarge is issue 16's large-item shape: the parent puts
// 1000 × 1 MiB items into a JoinableQueue of capacity 16, one child
// process gets each and marks it done (keeping nothing), the parent joins
// the queue, closes it and joins the child; []byte items, and struct items
// {Seq int; Data []byte}. Its floor writes the same bytes in 1 MiB writes
// of one buffer into a socketpair that a child process (this test binary,
// re-executed: runSink) reads into one reused 1 MiB buffer. Python's twin
// is multiprocessing.JoinableQueue(16) with bytes and (seq, bytes) items.
func BenchmarkXQueueLarge(b *testing.B) {
	payload := make([]byte, bigItemSize)
	b.Run("bytes", func(b *testing.B) {
		runImpls(b, []impl{
			{"mp", func(b *testing.B) {
				benchLarge(b, drainLargeBytes, func(int) []byte { return payload })
			}},
			{"floor", benchLargeFloor},
		})
	})
	b.Run("struct", func(b *testing.B) {
		runImpls(b, []impl{
			{"mp", func(b *testing.B) {
				benchLarge(b, drainLargeStruct, func(i int) largeItem { return largeItem{Seq: i, Data: payload} })
			}},
			{"floor", benchLargeFloor},
		})
	})
}

// largeItem is the struct item of BenchmarkXQueueLarge.
type largeItem struct {
	Seq  int
	Data []byte
}

// drainLarge gets items until q is closed, marks each done and returns
// the number of bytes they held, measured by size.
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
	drainLargeBytes = mp.Register(func(ctx context.Context, q *mp.JoinableQueue[[]byte]) (int, error) {
		return drainLarge(ctx, q, func(b []byte) int { return len(b) })
	})
	drainLargeStruct = mp.Register(func(ctx context.Context, q *mp.JoinableQueue[largeItem]) (int, error) {
		return drainLarge(ctx, q, func(v largeItem) int { return len(v.Data) })
	})
)

func benchLarge[T any](b *testing.B, drain mp.Func[*mp.JoinableQueue[T], int], item func(i int) T) {
	ctx := b.Context()
	b.SetBytes(bigItems * bigItemSize)
	for b.Loop() {
		q := mp.NewJoinableQueue[T](16)
		p := mp.NewProcess(drain, q)
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		for i := range bigItems {
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
		if n, err := p.Result(); err != nil || n != bigItems*bigItemSize {
			b.Fatalf("the child got %d bytes, %v; want %d", n, err, bigItems*bigItemSize)
		}
	}
	reportPer(b, bigItems, "item")
}

func benchLargeFloor(b *testing.B) {
	payload := make([]byte, bigItemSize)
	b.SetBytes(bigItems * bigItemSize)
	for b.Loop() {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
		w, r := os.NewFile(uintptr(fds[0]), "w"), os.NewFile(uintptr(fds[1]), "r")
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), sinkEnv+"=1")
		cmd.Stdin = r
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		r.Close()
		for range bigItems {
			if _, err := w.Write(payload); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(out.String())); n != bigItems*bigItemSize {
			b.Fatalf("the child read %q bytes; want %d", out.String(), bigItems*bigItemSize)
		}
	}
	reportPer(b, bigItems, "item")
}
