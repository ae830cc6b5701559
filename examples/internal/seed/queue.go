package seed

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mpgo/mp"
)

// Tick stands for the seed's time.sleep(random.randrange(1, 2)), which
// always sleeps one second; a tenth of that keeps the demonstrations quick.
const Tick = 100 * time.Millisecond

// ProducerConsumer is the twin of §7 with a goroutine as the consumer: the
// producer makes five products, one a tick, the consumer takes each as it
// comes and marks it done, and the producer's Join returns once every
// product has been consumed.
func ProducerConsumer(ctx context.Context, w io.Writer) error {
	w = &syncWriter{w: w}
	q := mp.NewJoinableQueue[string](0)

	// Like the seed's daemon process, the consumer loops for as long as
	// the queue is open; unlike it, the consumer ends when the queue is
	// closed, so that nothing outlives this function.
	var wg sync.WaitGroup
	wg.Go(func() {
		for res, err := range q.All(ctx) {
			if err != nil {
				fmt.Fprintln(w, err)
				return
			}
			fmt.Fprintf(w, "consumer got %s\n", res)
			q.TaskDone()
		}
	})
	defer wg.Wait()
	defer q.Close()

	for i := range 5 {
		time.Sleep(Tick)
		item := fmt.Sprintf("product %d", i)
		if err := q.Put(ctx, item); err != nil {
			return err
		}
		fmt.Fprintf(w, "producer made %s\n", item)
	}
	if err := q.Join(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "main thread")
	return nil
}
