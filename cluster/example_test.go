package cluster_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/cluster"
	"github.com/mpgo/mp/cluster/embed"
)

// double is registered so that workers in other processes find it by name.
var double = mp.Register(func(_ context.Context, x int) (int, error) { return 2 * x, nil })

func ExampleNewPool() {
	ctx := context.Background()
	srv, err := embed.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	js, err := srv.JetStream()
	if err != nil {
		log.Fatal(err)
	}

	// A worker. In a real deployment it runs in other processes, on other
	// machines, connected to the same server.
	wctx, stop := context.WithCancel(ctx)
	served := make(chan error)
	go func() { served <- cluster.Serve(wctx, js, "example") }()
	defer func() {
		stop()
		<-served
	}()

	pool, err := cluster.NewPool(ctx, js, "example")
	if err != nil {
		log.Fatal(err)
	}
	out, err := mp.Map(ctx, pool, double, []int{1, 2, 3})
	fmt.Println(out, err)
	pool.Close()
	fmt.Println(pool.Join(ctx))
	// Output:
	// [2 4 6] <nil>
	// <nil>
}

func ExampleNewJoinableQueue() {
	ctx := context.Background()
	srv, err := embed.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	js, err := srv.JetStream()
	if err != nil {
		log.Fatal(err)
	}

	q, err := cluster.NewJoinableQueue[string](ctx, js, "jobs", 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, job := range []string{"a", "b", "c"} {
		if err := q.Put(ctx, job); err != nil {
			log.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}

	// A consumer, which could be in any process connected to the server.
	consumer, err := cluster.NewJoinableQueue[string](ctx, js, "jobs", 0)
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for job, err := range consumer.All(ctx) {
			if err != nil {
				log.Print(err)
				return
			}
			fmt.Println("did", job)
			consumer.TaskDone()
		}
	}()
	fmt.Println(q.Join(ctx))
	<-done
	// Output:
	// did a
	// did b
	// did c
	// <nil>
}
