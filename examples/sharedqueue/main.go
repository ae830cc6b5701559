// Command sharedqueue is the Go twin of the seed's multiprocessing.Queue
// program: a writer process and a reader process share one queue created
// here; the parent waits for the writer and then terminates the reader,
// whose loop never ends.
//
// The Python original:
//
//	def write(q):
//	    print('Process to write: %s' % os.getpid())
//	    for value in ['A', 'B', 'C']:
//	        print('Put %s to queue...' % value)
//	        q.put(value)
//	        time.sleep(random.random())
//
//	def read(q):
//	    print('Process to read: %s' % os.getpid())
//	    while True:
//	        value = q.get(True)
//	        print('Get %s from queue.' % value)
//
//	if __name__ == "__main__":
//	    q = Queue()
//	    pw = Process(target=write, args=(q,))
//	    pr = Process(target=read, args=(q,))
//	    pw.start()
//	    pr.start()
//	    pw.join()
//	    pr.terminate()
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mpgo/mp"
	"github.com/mpgo/mp/examples/internal/seed"
)

func main() {
	mp.Main()
	code, err := seed.SharedQueueProcesses(context.Background(), 500*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reader terminated, exit code %d\n", code)
}
