package bench

import (
	"context"
	"testing"

	"github.com/mpgo/mp"
)

// The goroutine Pool of package mp in the pool workloads. Assumes
// mp.NewPool, (*Pool).Go, Close, Join, mp.ApplyAsync + Get and mp.Map.
func init() {
	submitImpls = append([]submitImpl{{"mp", func(tb testing.TB, w, n int, task func()) {
		p := mp.NewPool(w)
		f := func(context.Context) error { task(); return nil }
		for range n {
			if err := p.Go(f); err != nil {
				tb.Fatal(err)
			}
		}
		p.Close()
		if err := p.Join(tb.Context()); err != nil {
			tb.Fatal(err)
		}
	}}}, submitImpls...)

	futureImpls = append([]impl{{"mp", func(b *testing.B) {
		benchFutures(b, mp.NewPool(cores()), futureTasks)
	}}}, futureImpls...)

	mapImpls = append([]impl{{"mp", func(b *testing.B) {
		ctx := b.Context()
		p := mp.NewPool(cores())
		defer closeAndJoin(b, p)
		in := inputs(mapItems)
		var out []int
		for b.Loop() {
			var err error
			if out, err = mp.Map(ctx, p, squareTask, in); err != nil {
				b.Fatal(err)
			}
		}
		reportPer(b, mapItems, "item")
		checkSquares(b, out, mapItems)
	}}}, mapImpls...)
}

// benchFutures submits n squareTask tasks to p with ApplyAsync, then Gets
// them all, per iteration; it closes and joins p at the end.
func benchFutures(b *testing.B, p *mp.Pool, n int) {
	ctx := b.Context()
	defer closeAndJoin(b, p)
	futures := make([]*mp.AsyncResult[int], n)
	out := make([]int, n)
	for b.Loop() {
		for i := range futures {
			futures[i] = mp.ApplyAsync(ctx, p, squareTask, i)
		}
		for i, f := range futures {
			v, err := f.Get(ctx)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = v
		}
	}
	reportPer(b, n, "task")
	checkSquares(b, out, n)
}

// squareTask is square in mp's task shape.
func squareTask(_ context.Context, x int) (int, error) { return x * x, nil }

// closeAndJoin closes p and waits for its workers.
func closeAndJoin(tb testing.TB, p *mp.Pool) {
	tb.Helper()
	p.Close()
	if err := p.Join(context.Background()); err != nil {
		tb.Fatal(err)
	}
}
