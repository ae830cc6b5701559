package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	mp.Main()
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain())
	}
	goleak.VerifyTestMain(m)
}

var (
	square  = mp.Register(func(_ context.Context, x int) (int, error) { return x * x, nil })
	failing = mp.Register(func(_ context.Context, x int) (int, error) {
		return 0, fmt.Errorf("task %d failed", x)
	})
	panicky = mp.Register(func(_ context.Context, x int) (int, error) { panic(fmt.Sprintf("boom %d", x)) })
	// deadline returns the deadline the task runs under, in Unix ns, or 0.
	deadline = mp.Register(func(ctx context.Context, _ int) (int64, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return 0, nil
		}
		return d.UnixNano(), nil
	})
	// sleepy sleeps ms milliseconds, or until its ctx is done.
	sleepy = mp.Register(func(ctx context.Context, ms int) (int, error) {
		sleepyRuns.Add(1)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			sleepyCancelled.Add(1)
			return 0, context.Cause(ctx)
		}
	})
	// blocked starts and waits for its ctx.
	blocked = mp.Register(func(ctx context.Context, _ int) (int, error) {
		blockedStarted <- struct{}{}
		<-ctx.Done()
		blockedCancelled.Add(1)
		return 0, context.Cause(ctx)
	})
	pidOf = mp.Register(func(context.Context, int) (int, error) { return os.Getpid(), nil })
	echoB = mp.Register(func(_ context.Context, b []byte) ([]byte, error) { return b, nil })
)

var (
	sleepyRuns, sleepyCancelled atomic.Int64
	blockedCancelled            atomic.Int64
	blockedStarted              = make(chan struct{}, 100)
)

// server starts an embedded server for the test.
func server(t *testing.T, opts ...embed.Option) *embed.Server {
	t.Helper()
	// Not t.Context(): it ends before the cleanups that still use the
	// server run.
	srv, err := embed.Run(context.Background(), opts...)
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv
}

// connect opens a connection of its own for one part of a test, as a
// separate process would have.
func connect(t *testing.T, srv *embed.Server) jetstream.JetStream {
	t.Helper()
	nc, err := srv.Connect()
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// serve runs a worker on its own connection until the returned function,
// also called at cleanup, stops it.
func serve(t *testing.T, srv *embed.Server, name string, opts ...cluster.Option) (stop func()) {
	t.Helper()
	js := connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cluster.Serve(ctx, js, name, opts...) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// pool makes a submitter's pool on its own connection, terminated at
// cleanup.
func pool(t *testing.T, srv *embed.Server, name string, opts ...cluster.Option) *mp.Pool {
	t.Helper()
	p, err := cluster.NewPool(t.Context(), connect(t, srv), name, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Terminate()
		_ = p.Join(context.Background())
	})
	return p
}

var errAny = errors.New("any")

// embedPort makes the server listen on a free port of 127.0.0.1, for
// worker processes.
func embedPort() embed.Option { return embed.Port(0) }
