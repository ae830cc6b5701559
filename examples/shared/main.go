// Command shared is the Go twin of a Python multiprocessing program that
// shares state between processes: a counter in a Value under a Lock, a
// Barrier between two phases, and a shared_memory buffer that four
// processes fill in place.
//
// The Python original:
//
//	def worker(i, lock, counter, barrier, name):
//	    for _ in range(1000):
//	        with lock:
//	            counter.value += 1
//	    shm = shared_memory.SharedMemory(name=name)
//	    q = len(shm.buf) // 4
//	    shm.buf[i*q:(i+1)*q] = bytes([ord('a') + i]) * q
//	    index = barrier.wait()
//	    print(index, zlib.crc32(shm.buf))
//	    shm.close()
//
//	if __name__ == "__main__":
//	    lock, counter = Lock(), Value('q', 0, lock=False)
//	    barrier = Barrier(4)
//	    shm = shared_memory.SharedMemory(create=True, size=4096)
//	    procs = [Process(target=worker, args=(i, lock, counter, barrier, shm.name)) for i in range(4)]
//	    for p in procs: p.start()
//	    for p in procs: p.join()
//	    print(counter.value)
//	    shm.close(); shm.unlink()
//
// SharedMemory is Linux and macOS only: on Windows its constructor returns
// errors.ErrUnsupported.
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
	if err := seed.Shared(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}
