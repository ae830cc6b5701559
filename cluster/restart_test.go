package cluster_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dial connects over TCP, reconnecting for ever, as a worker on another
// machine would.
func dial(t *testing.T, srv *embed.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(srv.URL(), nats.Token(srv.Token()), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// quiet discards what workers log about the server going away.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestNothingLostAcrossFileStoreRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := embed.Run(context.Background(), embed.StoreDir(dir), embed.Port(0))
	require.NoError(t, err)
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	token := srv.Token()

	ctx := t.Context()
	p, err := cluster.NewPool(ctx, dial(t, srv), "r", cluster.AckWait(time.Second))
	require.NoError(t, err)
	defer func() {
		p.Close()
		assert.NoError(t, p.Join(context.Background()))
	}()
	q, err := cluster.NewJoinableQueue[string](ctx, dial(t, srv), "r", 0)
	require.NoError(t, err)
	// A worker of another pool, connected through the restart.
	w, err := cluster.NewPool(ctx, dial(t, srv), "w", cluster.AckWait(time.Second))
	require.NoError(t, err)
	defer func() {
		w.Close()
		assert.NoError(t, w.Join(context.Background()))
	}()
	wJS := dial(t, srv)
	wctx, wstop := context.WithCancel(context.Background())
	wServed := make(chan error, 1)
	go func() { wServed <- cluster.Serve(wctx, wJS, "w", cluster.Logger(quiet)) }()
	defer func() {
		wstop()
		assert.NoError(t, <-wServed)
	}()
	v, err := mp.Apply(ctx, w, square, 3)
	require.NoError(t, err)
	require.Equal(t, 9, v)

	var rs []*mp.AsyncResult[int]
	for i := range 5 {
		rs = append(rs, mp.ApplyAsync(ctx, p, square, i))
		require.NoError(t, q.Put(ctx, "item "+strconv.Itoa(i)))
	}
	// Wait until every task is on the server, then take it down.
	js := dial(t, srv)
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, "MP_r")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 5
	}, 10*time.Second, time.Millisecond)
	srv.Shutdown()

	srv, err = embed.Run(context.Background(), embed.StoreDir(dir), embed.Port(port), embed.Token(token))
	require.NoError(t, err)
	defer srv.Shutdown()

	// A worker starts after the restart; the submitter has reconnected.
	serveJS := dial(t, srv)
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- cluster.Serve(sctx, serveJS, "r", cluster.Logger(quiet)) }()
	defer func() {
		stop()
		assert.NoError(t, <-served)
	}()
	for i, r := range rs {
		v, err := r.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, i*i, v)
	}
	v, err = mp.Apply(ctx, w, square, 4)
	require.NoError(t, err, "the worker connected before the restart goes on")
	require.Equal(t, 16, v)
	for i := range 5 {
		v, err := q.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, "item "+strconv.Itoa(i), v)
		q.TaskDone()
	}
	require.NoError(t, q.Join(ctx))
}

func TestServerGoneFailsWithinContext(t *testing.T) {
	srv, err := embed.Run(context.Background())
	require.NoError(t, err)
	p, err := cluster.NewPool(t.Context(), connect(t, srv), "g")
	require.NoError(t, err)
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	// The task itself ends with its ctx: Get without a deadline returns.
	_, err = mp.ApplyAsync(ctx, p, square, 1).Get(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	p.Terminate()
	_ = p.Join(context.Background())
}
