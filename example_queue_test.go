package mp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mpgo/mp"
)

// This is the seed's producer and consumer (Python's JoinableQueue example)
// with a goroutine as the consumer: the producer puts five products, then
// Join waits until the consumer has called TaskDone for each.
func ExampleJoinableQueue() {
	ctx := context.Background()
	q := mp.NewJoinableQueue[string](0)

	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for item, err := range q.All(ctx) {
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println("consumer got", item)
			q.TaskDone()
		}
	}()

	for i := range 5 {
		if err := q.Put(ctx, fmt.Sprintf("product %d", i)); err != nil {
			fmt.Println(err)
		}
	}
	if err := q.Join(ctx); err != nil { // every product has been consumed
		fmt.Println(err)
	}
	fmt.Println("main")

	q.Close() // ends the consumer's loop
	<-consumed
	// Output:
	// consumer got product 0
	// consumer got product 1
	// consumer got product 2
	// consumer got product 3
	// consumer got product 4
	// main
}

// Close is Python 3.13's shutdown: the consumer still gets what is left,
// then Get returns ErrClosed.
func ExampleQueue_Close() {
	ctx := context.Background()
	q := mp.NewQueue[int](10)
	for i := range 3 {
		_ = q.Put(ctx, i)
	}
	q.Close()
	fmt.Println(q.Put(ctx, 3))
	for {
		v, err := q.Get(ctx)
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(v)
	}
	// Output:
	// mp: closed
	// 0
	// 1
	// 2
	// mp: closed
}

// Python's get(timeout=...) is a context with a timeout.
func ExampleQueue_Get() {
	q := mp.NewQueue[string](0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := q.Get(ctx)
	fmt.Println(err)
	// Output:
	// context deadline exceeded
}

func ExampleQueue_TryPut() {
	q := mp.NewQueue[int](1)
	fmt.Println(q.TryPut(1))
	fmt.Println(q.TryPut(2))
	// Output:
	// <nil>
	// mp: queue full
}

// Python's PriorityQueue hands out the least item first.
func ExampleNewPriorityQueue() {
	type job struct {
		priority int
		name     string
	}
	ctx := context.Background()
	q := mp.NewPriorityQueue(0, func(a, b job) bool { return a.priority < b.priority })
	_ = q.Put(ctx, job{3, "write report"})
	_ = q.Put(ctx, job{1, "fix outage"})
	_ = q.Put(ctx, job{2, "review patch"})
	for range 3 {
		j, _ := q.Get(ctx)
		fmt.Println(j.priority, j.name)
	}
	// Output:
	// 1 fix outage
	// 2 review patch
	// 3 write report
}
