package seed

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/mpgo/mp"
)

// sharedJob is what each worker process of Shared receives: the shared
// state travels inside the task's argument, as Python passes it in args.
type sharedJob struct {
	Part    int
	Parts   int
	Lock    *mp.Lock
	Counter *mp.Value[int64]
	Barrier *mp.Barrier
	Buf     *mp.SharedMemory
	Adds    int
}

// sharedResult is a worker's report.
type sharedResult struct {
	Index int    // its arrival index at the barrier
	Sum   uint32 // the checksum of the whole buffer, after the barrier
}

// sharedWorker does the work of one process of Shared: it counts under
// the lock, fills its part of the buffer, waits at the barrier for the
// others to fill theirs, then reads the whole buffer.
var sharedWorker = mp.Register(func(ctx context.Context, j sharedJob) (sharedResult, error) {
	// Phase 1: a read-modify-write that only the Lock makes safe.
	for range j.Adds {
		if err := j.Lock.Lock(ctx); err != nil {
			return sharedResult{}, err
		}
		j.Counter.Store(j.Counter.Load() + 1)
		j.Lock.Unlock()
	}
	b := j.Buf.Bytes()
	n := len(b) / j.Parts
	for i := j.Part * n; i < (j.Part+1)*n; i++ {
		b[i] = byte('a' + j.Part)
	}
	// Phase 2 starts only once every part is written.
	idx, err := j.Barrier.Wait(ctx)
	if err != nil {
		return sharedResult{}, err
	}
	return sharedResult{Index: idx, Sum: crc32.ChecksumIEEE(b)}, j.Buf.Close()
})

// Shared is the Go twin of a Python program that shares state between
// processes:
//
//	lock = Lock(); counter = Value('q', 0, lock=False)
//	barrier = Barrier(4)
//	shm = shared_memory.SharedMemory(create=True, size=4 * 1024)
//	procs = [Process(target=worker, args=(i, lock, counter, barrier, shm.name)) for i in range(4)]
//
// Four processes count to 4000 in a shared Value under a Lock, fill a
// quarter each of a SharedMemory buffer, meet at a Barrier, and then each
// reads the whole buffer, which the parent reads too: no byte is copied
// between the processes.
func Shared(ctx context.Context, w io.Writer) error {
	const parts, size, adds = 4, 4 << 10, 1000
	counter, err := mp.NewValue[int64](0)
	if err != nil {
		return err
	}
	defer counter.Close()
	buf, err := mp.NewSharedMemory(size)
	if err != nil {
		return err
	}
	defer buf.Close()
	lock, barrier := mp.NewLock(), mp.NewBarrier(parts)
	var ps []*mp.Process[sharedResult]
	for i := range parts {
		p := mp.NewProcess(sharedWorker, sharedJob{
			Part: i, Parts: parts, Lock: lock, Counter: counter, Barrier: barrier, Buf: buf, Adds: adds,
		})
		if err := p.Start(); err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			return err
		}
	}
	want := crc32.ChecksumIEEE(buf.Bytes())
	seen := map[int]bool{}
	for _, p := range ps {
		r, _ := p.Result()
		if r.Sum != want {
			return fmt.Errorf("process %d read checksum %08x after the barrier, want %08x", p.Pid(), r.Sum, want)
		}
		seen[r.Index] = true
		fmt.Fprintf(w, "process %d: barrier index %d, buffer checksum %08x\n", p.Pid(), r.Index, r.Sum)
	}
	if len(seen) != parts {
		return fmt.Errorf("barrier indexes %v are not distinct", seen)
	}
	b := buf.Bytes()
	fmt.Fprintf(w, "counter = %d (4 processes × %d adds under the Lock)\n", counter.Load(), adds)
	fmt.Fprintf(w, "buffer = %s…%s (%d bytes, a quarter per process)\n", b[:4], b[len(b)-4:], len(b))
	if got := counter.Load(); got != parts*adds {
		return fmt.Errorf("counter is %d, want %d", got, parts*adds)
	}
	return nil
}
