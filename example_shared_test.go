//go:build unix

package mp_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/mpgo/mp"
)

// counterJob is the argument of incrementLocked: a counter in shared
// memory and the lock that guards its read-modify-write.
type counterJob struct {
	Lock    *mp.Lock
	Counter *mp.Value[int64]
	N       int
}

// incrementLocked adds 1 to the counter N times, with a Load and a Store
// that only the Lock keeps from interleaving.
var incrementLocked = mp.Register(func(ctx context.Context, j counterJob) (struct{}, error) {
	for range j.N {
		if err := j.Lock.Lock(ctx); err != nil {
			return struct{}{}, err
		}
		j.Counter.Store(j.Counter.Load() + 1)
		j.Lock.Unlock()
	}
	return struct{}{}, nil
})

// This is Python's
//
//	lock = multiprocessing.Lock()
//	counter = multiprocessing.Value('q', 0, lock=False)
//	procs = [Process(target=increment, args=(lock, counter, 1000)) for _ in range(4)]
//
// The Lock and the Value cross to the children inside the task's argument.
func ExampleLock() {
	ctx := context.Background()
	counter, err := mp.NewValue[int64](0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer counter.Close()
	job := counterJob{Lock: mp.NewLock(), Counter: counter, N: 1000}
	var ps []*mp.Process[struct{}]
	for range 4 {
		p := mp.NewProcess(incrementLocked, job)
		if err := p.Start(); err != nil {
			fmt.Println(err)
			return
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(counter.Load())
	// Output: 4000
}

// This is Python's BoundedSemaphore(2) bounding how many workers use a
// resource at once; here between goroutines, the same value works across
// processes.
func ExampleSemaphore() {
	ctx := context.Background()
	sem := mp.NewSemaphore(2)
	var mu sync.Mutex
	in, most := 0, 0
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if err := sem.Acquire(ctx, 1); err != nil {
				return
			}
			defer sem.Release(1)
			mu.Lock()
			in++
			most = max(most, in)
			mu.Unlock()
			mu.Lock()
			in--
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println(most <= 2)
	// Output: true
}

// waitThenReport waits for the event and says so.
var waitThenReport = mp.Register(func(ctx context.Context, e *mp.Event) (string, error) {
	if err := e.Wait(ctx); err != nil {
		return "", err
	}
	return "child saw the event", nil
})

// This is Python's
//
//	e = multiprocessing.Event()
//	p = Process(target=wait_then_report, args=(e,)); p.start()
//	e.set(); p.join()
func ExampleEvent() {
	ctx := context.Background()
	e := mp.NewEvent()
	p := mp.NewProcess(waitThenReport, e)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	e.Set()
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Result())
	// Output: child saw the event <nil>
}

// This is Python's multiprocessing.Condition: a consumer waits, under the
// lock, until a producer has made its condition true and notified it.
func ExampleCond() {
	ctx := context.Background()
	c := mp.NewCond(mp.NewLock())
	var items []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.L.Lock(ctx); err != nil {
			return
		}
		defer c.L.Unlock()
		for len(items) == 0 {
			if err := c.Wait(ctx); err != nil {
				return
			}
		}
		fmt.Println("consumed", items[0])
	}()
	if err := c.L.Lock(ctx); err != nil {
		return
	}
	items = append(items, "apple")
	c.Signal()
	c.L.Unlock()
	<-done
	// Output: consumed apple
}

// This is Python's multiprocessing.Barrier(3): three parties wait for each
// other, and each gets a distinct index; the one with index 0 may act for
// all, as Python's action argument does.
func ExampleBarrier() {
	ctx := context.Background()
	b := mp.NewBarrier(3)
	idx := make([]int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			n, err := b.Wait(ctx)
			if err != nil {
				fmt.Println(err)
			}
			idx[i] = n
		})
	}
	wg.Wait()
	slices.Sort(idx)
	fmt.Println(idx)
	// Output: [0 1 2]
}

// fillQuarter fills its quarter of the shared buffer.
var fillQuarter = mp.Register(func(_ context.Context, a struct {
	M    *mp.SharedMemory
	Part int
}) (struct{}, error) {
	b := a.M.Bytes()
	q := len(b) / 4
	for i := a.Part * q; i < (a.Part+1)*q; i++ {
		b[i] = byte('A' + a.Part)
	}
	return struct{}{}, a.M.Close()
})

// This is Python's
//
//	shm = shared_memory.SharedMemory(create=True, size=8)
//
// filled by four processes, each writing its part in place: nothing is
// copied back to the parent.
func ExampleSharedMemory() {
	ctx := context.Background()
	shm, err := mp.NewSharedMemory(8)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer shm.Close()
	var ps []*mp.Process[struct{}]
	for part := range 4 {
		p := mp.NewProcess(fillQuarter, struct {
			M    *mp.SharedMemory
			Part int
		}{shm, part})
		if err := p.Start(); err != nil {
			fmt.Println(err)
			return
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(string(shm.Bytes()))
	// Output: AABBCCDD
}

// addMany adds 1 to the counter n times, atomically.
var addMany = mp.Register(func(_ context.Context, v *mp.Value[int64]) (struct{}, error) {
	for range 100_000 {
		v.Add(1)
	}
	return struct{}{}, nil
})

// This is Python's multiprocessing.Value('q', 0), incremented by four
// processes. Python's `with v.get_lock(): v.value += 1` is one Add here: an
// atomic instruction on the shared memory.
func ExampleValue() {
	ctx := context.Background()
	v, err := mp.NewValue[int64](0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	var ps []*mp.Process[struct{}]
	for range 4 {
		p := mp.NewProcess(addMany, v)
		if err := p.Start(); err != nil {
			fmt.Println(err)
			return
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(v.Load())
	// Output: 400000
}

// squareInPlace squares every element of the shared array.
var squareInPlace = mp.Register(func(_ context.Context, a *mp.Array[float64]) (struct{}, error) {
	s := a.Slice()
	for i := range s {
		s[i] *= s[i]
	}
	return struct{}{}, nil
})

// This is Python's multiprocessing.Array('d', [1, 2, 3]) changed in place
// by a child process.
func ExampleArray() {
	ctx := context.Background()
	a, err := mp.NewArray[float64](3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	copy(a.Slice(), []float64{1, 2, 3})
	p := mp.NewProcess(squareInPlace, a)
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Join(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Len(), a.Slice())
	// Output: 3 [1 4 9]
}

// recordLength stores the length of each word in the shared dict.
var recordLength = mp.Register(func(_ context.Context, a struct {
	D    *mp.Dict[string, int]
	Word string
}) (struct{}, error) {
	return struct{}{}, a.D.Store(a.Word, len(a.Word))
})

// This is Python's
//
//	d = multiprocessing.Manager().dict()
//	pool.starmap(record_length, [(d, w) for w in words])
func ExampleDict() {
	ctx := context.Background()
	d := mp.NewDict[string, int]()
	pool := mp.NewProcessPool(2)
	for _, w := range []string{"go", "python", "rust"} {
		_, err := mp.Apply(ctx, pool, recordLength, struct {
			D    *mp.Dict[string, int]
			Word string
		}{d, w})
		if err != nil {
			fmt.Println(err)
		}
	}
	pool.Close()
	if err := pool.Join(ctx); err != nil {
		fmt.Println(err)
	}
	n, _ := d.Load("python")
	fmt.Println(d.Len(), n)
	// Output: 3 6
}

// This is Python's concurrent.futures.as_completed: results arrive in the
// order the tasks finish, not the order they were submitted.
func ExampleAsCompleted() {
	ctx := context.Background()
	pool := mp.NewPool(3)
	gates := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	var rs []*mp.AsyncResult[string]
	for i, name := range []string{"slow", "medium", "fast"} {
		rs = append(rs, mp.ApplyAsync(ctx, pool, func(context.Context, string) (string, error) {
			<-gates[i]
			return name, nil
		}, name))
	}
	close(gates[2])
	next := 1
	for r := range mp.AsCompleted(ctx, rs...) {
		v, _ := r.Get(ctx)
		fmt.Println(v)
		if next >= 0 {
			close(gates[next])
			next--
		}
	}
	pool.Close()
	_ = pool.Join(ctx)
	// Output:
	// fast
	// medium
	// slow
}

// This is Python's Future.cancel: a task still waiting for a worker never
// runs.
func ExampleAsyncResult_Cancel() {
	ctx := context.Background()
	pool := mp.NewPool(1)
	gate := make(chan struct{})
	busy := mp.ApplyAsync(ctx, pool, func(context.Context, int) (int, error) { <-gate; return 1, nil }, 0)
	queued := mp.ApplyAsync(ctx, pool, func(context.Context, int) (int, error) { return 2, nil }, 0)
	fmt.Println(queued.Cancel())
	_, err := queued.Get(ctx)
	fmt.Println(err)
	close(gate)
	v, _ := busy.Get(ctx)
	fmt.Println(v, busy.Cancel())
	pool.Close()
	_ = pool.Join(ctx)
	// Output:
	// true
	// context canceled
	// 1 false
}

// This is Python's Pool.map_async followed by close, join and get.
func ExampleMapAsync() {
	ctx := context.Background()
	pool := mp.NewPool(4)
	r := mp.MapAsync(ctx, pool, func(_ context.Context, x int) (int, error) { return x * x, nil }, []int{1, 2, 3, 4})
	pool.Close()
	if err := pool.Join(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println(r.Get(ctx))
	// Output: [1 4 9 16] <nil>
}

// This is Python's multiprocessing.active_children().
func ExampleActiveChildren() {
	ctx := context.Background()
	e := mp.NewEvent()
	p := mp.NewProcess(waitThenReport, e)
	p.Name = "worker-1"
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range mp.ActiveChildren() {
		if c.Pid == p.Pid() {
			fmt.Println("active:", c.Name)
		}
	}
	e.Set()
	_ = p.Join(ctx)
	fmt.Println(slices.ContainsFunc(mp.ActiveChildren(), func(c mp.ProcessInfo) bool { return c.Pid == p.Pid() }))
	// Output:
	// active: worker-1
	// false
}
