// Command demo runs an mp pool across processes over NATS JetStream: a
// submitter maps a function over 1000 items, and worker processes, which
// could be on other machines, run them.
//
//	cd cluster && go run ./examples/demo
//
// starts a JetStream server inside the demo, listening on 127.0.0.1 with
// a generated token, two worker processes, and the submitter, and prints
// which worker ran how many items. Against a server of your own
// (nats-server -js):
//
//	go run ./examples/demo -url nats://host:4222 -worker     # on each worker machine
//	go run ./examples/demo -url nats://host:4222 -workers 0  # the submitter
//
// The token, if the server wants one, is read from $NATS_TOKEN.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/mpgo/mp/cluster/embed"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// result is what a task returns: its value and the worker that ran it.
type result struct {
	Pid, Square int
}

// square is the task. Workers find it by the name under which it is
// registered, so every worker must run this same binary.
var square = mp.Register(func(_ context.Context, x int) (result, error) {
	time.Sleep(200 * time.Microsecond) // a task with some work in it
	return result{Pid: os.Getpid(), Square: x * x}, nil
})

// server says where a worker connects.
type server struct {
	URL, Token string
}

// serve is the body of a worker process that the demo starts itself.
var serve = mp.Register(func(ctx context.Context, s server) (struct{}, error) {
	return struct{}{}, work(ctx, s)
})

func work(ctx context.Context, s server) error {
	nc, err := nats.Connect(s.URL, nats.Token(s.Token), nats.Name("mp demo worker"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return cluster.Serve(ctx, js, "demo")
}

func main() {
	mp.Main()
	url := flag.String("url", "", "URL of a NATS server with JetStream; empty starts one inside the demo")
	worker := flag.Bool("worker", false, "only serve tasks, until interrupted")
	workers := flag.Int("workers", 2, "worker processes to start on this machine")
	n := flag.Int("n", 1000, "items to map over")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *worker, *workers, *n); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string, worker bool, workers, n int) error {
	s := server{URL: url, Token: os.Getenv("NATS_TOKEN")}
	if worker {
		if url == "" {
			return fmt.Errorf("-worker needs -url")
		}
		return work(ctx, s)
	}

	var js jetstream.JetStream
	if url == "" {
		srv, err := embed.Run(ctx, embed.Port(0))
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		s = server{URL: srv.URL(), Token: srv.Token()}
		if js, err = srv.JetStream(); err != nil {
			return err
		}
		fmt.Printf("embedded JetStream server on %s\n", s.URL)
	} else {
		nc, err := nats.Connect(url, nats.Token(s.Token), nats.Name("mp demo submitter"))
		if err != nil {
			return err
		}
		defer nc.Close()
		if js, err = jetstream.New(nc); err != nil {
			return err
		}
	}

	for range workers {
		p := mp.NewProcess(serve, s)
		if err := p.Start(); err != nil {
			return err
		}
		fmt.Printf("worker process %d started\n", p.Pid())
		defer func() {
			_ = p.Terminate()
			_ = p.Join(context.Background())
		}()
	}

	pool, err := cluster.NewPool(ctx, js, "demo")
	if err != nil {
		return err
	}
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	start := time.Now()
	out, err := mp.Map(ctx, pool, square, items)
	took := time.Since(start)
	pool.Close()
	if jerr := pool.Join(context.Background()); err == nil {
		err = jerr
	}
	if err != nil {
		return err
	}

	ran := map[int]int{}
	for i, r := range out {
		if r.Square != i*i {
			return fmt.Errorf("item %d: got %d", i, r.Square)
		}
		ran[r.Pid]++
	}
	pids := make([]int, 0, len(ran))
	for pid := range ran {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	fmt.Printf("mapped %d items in %v\n", n, took.Round(time.Millisecond))
	for _, pid := range pids {
		fmt.Printf("  worker %d ran %d items\n", pid, ran[pid])
	}
	return nil
}
