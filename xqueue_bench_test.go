//go:build unix

package mp_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mpgo/mp"
)

// The tasks the cross-process queue benchmarks run in children.

// countBatches gets items and puts one token on Ack after every N items,
// until Q is closed.
func countBatches(ctx context.Context, a struct {
	Q   *mp.Queue[int]
	Ack *mp.Queue[int]
	N   int
}) (struct{}, error) {
	for n := 1; ; n++ {
		if _, err := a.Q.Get(ctx); err != nil {
			if errors.Is(err, mp.ErrClosed) {
				err = nil
			}
			return struct{}{}, err
		}
		if n%a.N == 0 {
			if err := a.Ack.Put(ctx, n); err != nil {
				return struct{}{}, err
			}
		}
	}
}

// drainBytes gets []byte items and marks each done until Q is closed.
func drainBytes(ctx context.Context, q *mp.JoinableQueue[[]byte]) (int, error) {
	n := 0
	for {
		b, err := q.Get(ctx)
		if errors.Is(err, mp.ErrClosed) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += len(b)
		q.TaskDone()
	}
}

func init() {
	mp.Register(countBatches)
	mp.Register(drainBytes)
}

const benchItems = 100_000

// BenchmarkXQueueToChild moves 100 000 small items (ints) from the parent
// to one consumer child per op: through a Queue, the child acknowledging
// the batch on a second queue; and through a JoinableQueue, the child
// calling TaskDone for each item and the parent's Join returning. Compare
// with Python's multiprocessing.Queue (about 240 k items/s on the same
// machine class) and JoinableQueue with task_done (about 220 k).
func BenchmarkXQueueToChild(b *testing.B) {
	b.Run("Queue", func(b *testing.B) {
		ctx := b.Context()
		q, ack := mp.NewQueue[int](0), mp.NewQueue[int](0)
		p := mp.NewProcess(countBatches, struct {
			Q   *mp.Queue[int]
			Ack *mp.Queue[int]
			N   int
		}{q, ack, benchItems})
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for i := range benchItems {
				if err := q.Put(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := ack.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
		reportItems(b)
		q.Close()
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("JoinableQueue", func(b *testing.B) {
		ctx := b.Context()
		q := mp.NewJoinableQueue[int](0)
		p := mp.NewProcess(consume, jobs{Q: q})
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for i := range benchItems {
				if err := q.Put(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			if err := q.Join(ctx); err != nil {
				b.Fatal(err)
			}
		}
		reportItems(b)
		q.Close()
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
	})
}

func reportItems(b *testing.B) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*benchItems)/s, "items/s")
	b.ReportMetric(s*1e9/float64(b.N*benchItems), "ns/item")
}

// BenchmarkXQueueLargeItems moves 1 MiB []byte items from the parent to a
// consumer child through a JoinableQueue, 16 items per op followed by the
// parent's Join, which waits for the last TaskDone. Compare its MB/s with
// BenchmarkSocketpairRaw in the same run.
func BenchmarkXQueueLargeItems(b *testing.B) {
	ctx := b.Context()
	q := mp.NewJoinableQueue[[]byte](0)
	p := mp.NewProcess(drainBytes, q)
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	const perOp = 16
	b.SetBytes(perOp * int64(len(payload)))
	for b.Loop() {
		for range perOp {
			if err := q.Put(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := q.Join(ctx); err != nil {
			b.Fatal(err)
		}
	}
	q.Close()
	if err := p.Join(ctx); err != nil {
		b.Fatal(err)
	}
}
