//go:build unix

package mp_test

import (
	"context"
	"fmt"

	"github.com/mpgo/mp"
)

// The tasks of the examples below run in child processes, so they are
// registered at package level.
func init() {
	mp.Register(printConsumer)
	mp.Register(exampleWriter)
	mp.Register(exampleReader)
}

// printConsumer takes items until the queue is closed, printing each and
// marking it done.
func printConsumer(ctx context.Context, q *mp.JoinableQueue[string]) (struct{}, error) {
	for res, err := range q.All(ctx) {
		if err != nil {
			return struct{}{}, err
		}
		fmt.Println("consumer got", res)
		q.TaskDone()
	}
	return struct{}{}, nil
}

// A JoinableQueue passed to a child process in its argument: the child
// consumes it, and the parent's Join returns once the child has marked
// every item done, as with Python's multiprocessing.JoinableQueue.
func ExampleNewJoinableQueue_process() {
	ctx := context.Background()
	q := mp.NewJoinableQueue[string](0)
	p := mp.NewProcess(printConsumer, q)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	for i := range 3 {
		item := fmt.Sprintf("product %d", i)
		if err := q.Put(ctx, item); err != nil {
			fmt.Println(err)
		}
		fmt.Println("producer made", item)
	}
	if err := q.Join(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("main")
	q.Close() // ends the consumer's loop
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
	}
	// Unordered output:
	// producer made product 0
	// producer made product 1
	// producer made product 2
	// consumer got product 0
	// consumer got product 1
	// consumer got product 2
	// main
}

type writeJob struct {
	Q      *mp.Queue[string]
	Values []string
}

func exampleWriter(ctx context.Context, j writeJob) (struct{}, error) {
	for _, v := range j.Values {
		fmt.Printf("Put %s to queue...\n", v)
		if err := j.Q.Put(ctx, v); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
}

func exampleReader(ctx context.Context, q *mp.Queue[string]) (struct{}, error) {
	for v, err := range q.All(ctx) {
		if err != nil {
			return struct{}{}, err
		}
		fmt.Printf("Get %s from queue.\n", v)
	}
	return struct{}{}, nil
}

// A Queue shared by a writer process and a reader process, as with
// Python's multiprocessing.Queue. Closing the queue ends the reader's
// loop once it has read everything; Python has to terminate it.
func ExampleNewQueue_processes() {
	ctx := context.Background()
	q := mp.NewQueue[string](0)
	pw := mp.NewProcess(exampleWriter, writeJob{q, []string{"A", "B", "C"}})
	pr := mp.NewProcess(exampleReader, q)
	for _, p := range []interface{ Start() error }{pw, pr} {
		if err := p.Start(); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := pw.Join(ctx); err != nil {
		fmt.Println(err)
	}
	q.Close()
	if err := pr.Join(ctx); err != nil {
		fmt.Println(err)
	}
	// Unordered output:
	// Put A to queue...
	// Put B to queue...
	// Put C to queue...
	// Get A from queue.
	// Get B from queue.
	// Get C from queue.
}
