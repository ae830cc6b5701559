package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mpgo/mp"
)

// The tasks of §7 and §8 run in child processes, so they are registered
// at package level: a child is a fresh run of the program, and finds them
// again by name.
func init() {
	mp.Register(consumer)
	mp.Register(writer)
	mp.Register(reader)
}

// consumer is §7's consumer process: it takes products until the queue is
// closed, printing each and marking it done.
func consumer(ctx context.Context, q *mp.JoinableQueue[string]) (struct{}, error) {
	for res, err := range q.All(ctx) {
		if err != nil {
			return struct{}{}, err
		}
		fmt.Printf("消费者拿到了 %s\n", res)
		q.TaskDone()
	}
	return struct{}{}, nil
}

// JoinableQueueProcess is the twin of §7: a JoinableQueue shared with a
// consumer child process; the producer puts five products, one every tick,
// and its Join returns once the child has marked every one done. Python's
// daemon consumer loops forever and dies with the program; here Close ends
// its loop, and it would die with the parent anyway. The child prints to
// its standard output, which is this process's; w gets the parent's lines.
func JoinableQueueProcess(ctx context.Context, w io.Writer, tick time.Duration) error {
	q := mp.NewJoinableQueue[string](0)
	p := mp.NewProcess(consumer, q)
	if err := p.Start(); err != nil {
		return err
	}
	producer := func() error {
		for i := range 5 {
			time.Sleep(tick)
			item := fmt.Sprintf("产品%d", i)
			if err := q.Put(ctx, item); err != nil {
				return err
			}
			fmt.Fprintf(w, "生产者做好了 %s\n", item)
		}
		return q.Join(ctx)
	}
	err := producer()
	fmt.Fprintln(w, "主线程")
	q.Close()
	return errors.Join(err, p.Join(ctx))
}

// writer is §8's writer process.
func writer(ctx context.Context, a struct {
	Q    *mp.Queue[string]
	Tick time.Duration
}) (struct{}, error) {
	fmt.Printf("Process to write: %d\n", os.Getpid())
	for _, value := range []string{"A", "B", "C"} {
		fmt.Printf("Put %s to queue...\n", value)
		if err := a.Q.Put(ctx, value); err != nil {
			return struct{}{}, err
		}
		time.Sleep(a.Tick)
	}
	return struct{}{}, nil
}

// reader is §8's reader process: it prints what it gets, forever.
func reader(ctx context.Context, q *mp.Queue[string]) (struct{}, error) {
	fmt.Printf("Process to read: %d\n", os.Getpid())
	for {
		value, err := q.Get(ctx)
		if err != nil {
			return struct{}{}, err
		}
		fmt.Printf("Get %s from queue.\n", value)
	}
}

// SharedQueueProcesses is the twin of §8: a Queue shared by a writer child
// and a reader child. The parent joins the writer, waits until the reader
// has taken every item (the parent's Len counts the items nobody has taken
// yet), and then terminates the reader, whose loop never ends, as Python
// does. It returns the reader's exit code, -15.
func SharedQueueProcesses(ctx context.Context, tick time.Duration) (int, error) {
	q := mp.NewQueue[string](0)
	pw := mp.NewProcess(writer, struct {
		Q    *mp.Queue[string]
		Tick time.Duration
	}{q, tick})
	pr := mp.NewProcess(reader, q)
	if err := pw.Start(); err != nil {
		return 0, err
	}
	if err := pr.Start(); err != nil {
		return 0, errors.Join(err, pw.Kill())
	}
	err := pw.Join(ctx) // wait for the writer to end
	for err == nil && q.Len() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	// The reader loops forever: it can only be stopped from outside.
	if terr := pr.Terminate(); err == nil {
		err = terr
	}
	<-pr.Done()
	code, _ := pr.ExitCode()
	return code, err
}
