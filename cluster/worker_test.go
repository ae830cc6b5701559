package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary is also a worker program: with workerEnv set it serves a
// pool from the server named by the other variables until its stdin
// closes, as a worker process on another machine would.
const (
	workerEnv   = "MP_CLUSTER_TEST_WORKER" // the pool's name
	workerURL   = "MP_CLUSTER_TEST_URL"
	workerToken = "MP_CLUSTER_TEST_TOKEN"
	workerSlots = "MP_CLUSTER_TEST_SLOTS"
	// workerMode "queue" consumes the joinable queue named by workerEnv
	// instead, marking each item done; "hold" gets one item, says so on
	// stdout, and holds it until killed.
	workerMode = "MP_CLUSTER_TEST_MODE"
)

var slowPid = mp.Register(func(ctx context.Context, ms int) (int, error) {
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return os.Getpid(), nil
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
})

func workerMain() int {
	slots, _ := strconv.Atoi(os.Getenv(workerSlots))
	nc, err := nats.Connect(os.Getenv(workerURL), nats.Token(os.Getenv(workerToken)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	switch os.Getenv(workerMode) {
	case "queue", "hold":
		q, err := cluster.NewJoinableQueue[int](ctx, js, os.Getenv(workerEnv), 0, cluster.AckWait(time.Second))
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
		if os.Getenv(workerMode) == "hold" {
			v, err := q.Get(ctx)
			fmt.Println("got", v, err)
			<-ctx.Done()
			return 0
		}
		for _, err := range q.All(ctx) {
			if err != nil {
				if ctx.Err() != nil {
					return 0 // stdin closed: the test is over
				}
				fmt.Fprintln(os.Stderr, "consumer:", err)
				return 1
			}
			q.TaskDone()
		}
		return 0
	}
	if err := cluster.Serve(ctx, js, os.Getenv(workerEnv), cluster.Slots(max(slots, 1))); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// startWorker starts the test binary as a worker process of pool name.
func startWorker(t *testing.T, url, token, name string, slots int) *exec.Cmd {
	return startChild(t, url, token, name, slots, "", nil)
}

// startChild starts the test binary as a worker process in mode (see
// workerMode), its stdout going to stdout.
func startChild(t *testing.T, url, token, name string, slots int, mode string, stdout io.Writer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+name, workerURL+"="+url, workerToken+"="+token, workerSlots+"="+strconv.Itoa(slots), workerMode+"="+mode)
	cmd.Stdout = stdout
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	return cmd
}

func TestKilledWorkerProcessTaskGoesToAnother(t *testing.T) {
	srv := server(t, embedPort())
	p := pool(t, srv, "kill", cluster.AckWait(time.Second))
	js := connect(t, srv)
	cons := workersConsumer(t, js, "kill")

	first := startWorker(t, srv.URL(), srv.Token(), "kill", 2)
	items := make([]int, 20)
	for i := range items {
		items[i] = 50
	}
	type result struct {
		pids []int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		pids, err := mp.Map(t.Context(), p, slowPid, items, mp.ChunkSize(1))
		done <- result{pids, err}
	}()
	// Kill the first worker while it holds tasks.
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending > 0
	}, 30*time.Second, time.Millisecond)
	require.NoError(t, first.Process.Kill())

	second := startWorker(t, srv.URL(), srv.Token(), "kill", 2)
	r := <-done
	require.NoError(t, r.err)
	require.Len(t, r.pids, len(items))
	fromSecond := 0
	for _, pid := range r.pids {
		require.Contains(t, []int{first.Process.Pid, second.Process.Pid}, pid)
		if pid == second.Process.Pid {
			fromSecond++
		}
	}
	assert.Positive(t, fromSecond)
}

func TestKilledConsumerProcessItemGoesToAnother(t *testing.T) {
	srv := server(t, embedPort())
	ctx := t.Context()
	q, err := cluster.NewJoinableQueue[int](ctx, connect(t, srv), "xq", 0, cluster.AckWait(time.Second))
	require.NoError(t, err)
	require.NoError(t, q.Put(ctx, 7))

	// A consumer process gets the item and is killed holding it.
	r, w := io.Pipe()
	holder := startChild(t, srv.URL(), srv.Token(), "xq", 0, "hold", w)
	line, err := bufio.NewReader(r).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "got 7 <nil>\n", line)
	require.NoError(t, holder.Process.Kill())
	_ = w.Close()

	for i := range 20 {
		require.NoError(t, q.Put(ctx, i))
	}
	require.NoError(t, q.Close())
	startChild(t, srv.URL(), srv.Token(), "xq", 0, "queue", nil)
	require.NoError(t, q.Join(ctx), "every item, the killed consumer's too, was marked done by the second")
}
