// Command producerconsumer is the Go twin of the seed's JoinableQueue
// program (Python's producer and consumer), with a goroutine as the
// consumer. The producer makes five products, one a tick; the consumer
// takes each as it comes and marks it done; the producer's Join returns
// once every product has been consumed.
//
// The Python original:
//
//	def consumer(q):
//	    while True:
//	        res = q.get()
//	        print('消费者拿到了 %s' % res)
//	        q.task_done()
//
//	def producer(seq, q):
//	    for item in seq:
//	        time.sleep(random.randrange(1,2))
//	        q.put(item)
//	        print('生产者做好了 %s' % item)
//	    q.join()
//
//	if __name__ == "__main__":
//	    q = JoinableQueue()
//	    seq = ('产品%s' % i for i in range(5))
//	    p = Process(target=consumer, args=(q,))
//	    p.daemon = True
//	    p.start()
//	    producer(seq, q)
//	    print('主线程')
package main

import (
	"context"
	"fmt"
	"iter"
	"log"
	"time"

	"github.com/mpgo/mp"
)

// tick stands for the seed's time.sleep(random.randrange(1, 2)), which
// always sleeps one second; a tenth of that keeps the demonstration quick.
const tick = 100 * time.Millisecond

func consumer(ctx context.Context, q *mp.JoinableQueue[string]) {
	for res := range q.All(ctx) {
		fmt.Printf("consumer got %s\n", res)
		q.TaskDone()
	}
}

func producer(ctx context.Context, seq iter.Seq[string], q *mp.JoinableQueue[string]) error {
	for item := range seq {
		time.Sleep(tick)
		if err := q.Put(ctx, item); err != nil {
			return err
		}
		fmt.Printf("producer made %s\n", item)
	}
	return q.Join(ctx)
}

func main() {
	mp.Main()
	ctx := context.Background()

	q := mp.NewJoinableQueue[string](0)
	seq := func(yield func(string) bool) {
		for i := range 5 {
			if !yield(fmt.Sprintf("product %d", i)) {
				return
			}
		}
	}
	// Like the seed's daemon process, the consumer runs until the program
	// ends; the producer's Join makes sure it has handled every product.
	go consumer(ctx, q)
	if err := producer(ctx, seq, q); err != nil {
		log.Fatal(err)
	}
	fmt.Println("main thread")
}
