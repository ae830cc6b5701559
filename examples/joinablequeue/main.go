// Command joinablequeue is the Go twin of the seed's JoinableQueue program
// with a real consumer process: the queue created here is passed to a
// child process in its argument, the child takes the products and marks
// each done, and the producer's Join returns once all are done.
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
//
// mp.Main() plays the part of the __main__ guard: in the child it runs the
// consumer and exits.
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	if err := seed.JoinableQueueProcess(context.Background(), os.Stdout, time.Second); err != nil {
		log.Fatal(err)
	}
}
