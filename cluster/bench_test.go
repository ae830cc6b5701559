package cluster_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// The benchmarks run against an embedded server with memory streams, the
// submitter and one worker (4 slots) on connections of their own in this
// process: what a task costs in the server, the client and the protocol,
// without a network. The process-pool twins measure mp's own pool on the
// same machine in the same run.

func benchServer(b *testing.B) *embed.Server {
	b.Helper()
	srv, err := embed.Run(context.Background())
	require.NoError(b, err)
	b.Cleanup(srv.Shutdown)
	return srv
}

func benchPool(b *testing.B) *mp.Pool { return benchPoolSlots(b, 4) }

// benchPoolSlots is benchPool with a worker of the given number of slots.
func benchPoolSlots(b *testing.B, slots int) *mp.Pool {
	b.Helper()
	srv := benchServer(b)
	js := benchJS(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, benchJS(b, srv), "bench", cluster.Slots(slots),
			cluster.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}()
	p, err := cluster.NewPool(context.Background(), js, "bench")
	require.NoError(b, err)
	b.Cleanup(func() {
		p.Close()
		_ = p.Join(context.Background())
		cancel()
		<-served
	})
	return p
}

func benchJS(b *testing.B, srv *embed.Server) jetstream.JetStream {
	b.Helper()
	nc, err := srv.Connect()
	require.NoError(b, err)
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	return js
}

func processPool(b *testing.B) *mp.Pool {
	b.Helper()
	p := mp.NewProcessPool(2)
	b.Cleanup(func() {
		p.Close()
		_ = p.Join(context.Background())
	})
	return p
}

func benchApply(b *testing.B, p *mp.Pool) {
	ctx := context.Background()
	_, err := mp.Apply(ctx, p, square, 1) // warm up
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := mp.Apply(ctx, p, square, 3); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply is the round trip of one task: submit, run, reply.
func BenchmarkApply(b *testing.B) {
	b.Run("cluster", func(b *testing.B) { benchApply(b, benchPool(b)) })
	b.Run("processpool", func(b *testing.B) { benchApply(b, processPool(b)) })
}

func benchPipelined(b *testing.B, p *mp.Pool) {
	ctx := context.Background()
	const batch = 1000
	rs := make([]*mp.AsyncResult[int], batch)
	n := 0
	for b.Loop() {
		rs[n] = mp.ApplyAsync(ctx, p, square, n)
		n++
		if n == batch {
			for _, r := range rs {
				if _, err := r.Get(ctx); err != nil {
					b.Fatal(err)
				}
			}
			n = 0
		}
	}
	for _, r := range rs[:n] {
		if _, err := r.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkPipelined is ApplyAsync of many tasks, then Get of each: the
// cost of a task when the pool's window is kept full.
func BenchmarkPipelined(b *testing.B) {
	b.Run("cluster", func(b *testing.B) { benchPipelined(b, benchPool(b)) })
	// Tiny tasks are bound by round trips, not CPUs: more slots than CPUs
	// keep more of them in flight.
	b.Run("cluster-32slots", func(b *testing.B) { benchPipelined(b, benchPoolSlots(b, 32)) })
	b.Run("processpool", func(b *testing.B) { benchPipelined(b, processPool(b)) })
}

func benchMap(b *testing.B, p *mp.Pool) {
	ctx := context.Background()
	items := make([]int, 100_000)
	for i := range items {
		items[i] = i
	}
	for b.Loop() {
		if _, err := mp.Map(ctx, p, square, items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkMap maps over 100 000 ints with Map's automatic chunking.
func BenchmarkMap(b *testing.B) {
	b.Run("cluster", func(b *testing.B) { benchMap(b, benchPool(b)) })
	b.Run("processpool", func(b *testing.B) { benchMap(b, processPool(b)) })
}

// BenchmarkJoinableQueue is one item's Put, Get and TaskDone, from one
// handle to another, each on a connection of its own.
func BenchmarkJoinableQueue(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	in, err := cluster.NewJoinableQueue[int](ctx, benchJS(b, srv), "bench", 0)
	require.NoError(b, err)
	out, err := cluster.NewJoinableQueue[int](ctx, benchJS(b, srv), "bench", 0)
	require.NoError(b, err)
	for b.Loop() {
		if err := in.Put(ctx, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := out.Get(ctx); err != nil {
			b.Fatal(err)
		}
		out.TaskDone()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
	require.NoError(b, in.Join(ctx))
}
