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
	"log"
	"os"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	if err := seed.ProducerConsumer(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
