package mp_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp"
)

// The seed's §2: two threads that print their name, then "main".
func ExampleNewThread() {
	test := func(_ context.Context, name string) (struct{}, error) {
		fmt.Println(name)
		return struct{}{}, nil
	}
	t1 := mp.NewThread(test, "thread1")
	t2 := mp.NewThread(test, "thread2")
	_ = t1.Start()
	_ = t2.Start()
	_ = t1.Join(context.Background())
	_ = t2.Join(context.Background())
	fmt.Println("main")
	// Unordered output:
	// thread1
	// thread2
	// main
}

// A Thread's task returns a typed result and an error, as every task does.
func ExampleThread_Result() {
	t := mp.NewThread(func(_ context.Context, n int) (int, error) { return n * n, nil }, 12)
	_ = t.Start()
	<-t.Done()
	fmt.Println(t.Result())
	// Output: 144 <nil>
}

// The seed's §3: a thread pool over 10 000 "images". Goroutines are cheap,
// so the pool can have 1000 workers instead of Python's 4; the program in
// examples/threadpool does it with Python's 100 ms of I/O per image.
func ExamplePool_images() {
	images := make([]string, 10000)
	for i := range images {
		images[i] = fmt.Sprintf("image_%d", i)
	}
	var processed atomic.Int64
	processImage := func(_ context.Context, path string) (struct{}, error) {
		time.Sleep(time.Millisecond) // stands for I/O
		processed.Add(1)
		return struct{}{}, nil
	}
	p := mp.NewPool(1000)
	_, err := mp.Map(context.Background(), p, processImage, images, mp.ChunkSize(1))
	p.Close()
	fmt.Println(errors.Join(err, p.Join(context.Background())))
	fmt.Println("processed", processed.Load(), "images")
	// Output:
	// <nil>
	// processed 10000 images
}

// The seed's §4: Pool(8).map over range(100). Map returns the results in
// the order of the items.
func ExampleMap() {
	p := mp.NewPool(8)
	fmt.Println("多进程开始执行")
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	squares, err := mp.Map(context.Background(), p, func(_ context.Context, i int) (int, error) {
		return i * i, nil
	}, items)
	p.Close()
	_ = p.Join(context.Background())
	fmt.Println(squares[:5], squares[99], err)
	// Output:
	// 多进程开始执行
	// [0 1 4 9 16] 9801 <nil>
}

// The seed's §5: 100 apply_async on Pool(8), then close and join. The
// tasks print as they run, so the order of the numbers varies.
func ExampleApplyAsync() {
	p := mp.NewPool(8)
	test := func(_ context.Context, i int) (struct{}, error) {
		fmt.Println(i)
		return struct{}{}, nil
	}
	for i := range 3 {
		mp.ApplyAsync(context.Background(), p, test, i)
	}
	p.Close()
	// Join waits for the tasks and reports errors nobody collected.
	if err := p.Join(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println("多进程结束执行")
	// Unordered output:
	// 0
	// 1
	// 2
	// 多进程结束执行
}

// The seed's §6: apply blocks until its task has run, so the numbers come
// out in order.
func ExampleApply() {
	p := mp.NewPool(8)
	for i := range 3 {
		_, _ = mp.Apply(context.Background(), p, func(_ context.Context, i int) (struct{}, error) {
			fmt.Println(i)
			return struct{}{}, nil
		}, i)
	}
	fmt.Println("多进程结束执行")
	p.Close()
	_ = p.Join(context.Background())
	// Output:
	// 0
	// 1
	// 2
	// 多进程结束执行
}

// AsyncResult.Get waits for one result, bounded by its ctx.
func ExampleAsyncResult_Get() {
	p := mp.NewPool(2)
	r := mp.ApplyAsync(context.Background(), p, func(_ context.Context, s string) (int, error) {
		return len(s), nil
	}, "hello")
	fmt.Println(r.Get(context.Background()))
	p.Close()
	_ = p.Join(context.Background())
	// Output: 5 <nil>
}

// Then is Python's callback and error_callback in one: it runs off the
// pool's workers, and Join waits for it.
func ExampleAsyncResult_Then() {
	p := mp.NewPool(2)
	mp.ApplyAsync(context.Background(), p, func(context.Context, int) (int, error) {
		return 0, errors.New("no such image")
	}, 7).Then(func(v int, err error) {
		fmt.Println("callback:", v, err)
	})
	p.Close()
	fmt.Println("join:", p.Join(context.Background()))
	// Output:
	// callback: 0 no such image
	// join: <nil>
}

// MapSeq streams results in order without reading all the input first;
// breaking out of the loop cancels what is outstanding.
func ExampleMapSeq() {
	p := mp.NewPool(4)
	naturals := func(yield func(int) bool) {
		for i := 0; yield(i); i++ {
		}
	}
	for sq, err := range mp.MapSeq(context.Background(), p, func(_ context.Context, i int) (int, error) {
		return i * i, nil
	}, naturals) {
		if err != nil || sq > 50 {
			break
		}
		fmt.Print(sq, " ")
	}
	fmt.Println()
	p.Close()
	_ = p.Join(context.Background())
	// Output: 0 1 4 9 16 25 36 49
}

// MapSeqUnordered yields results as tasks finish: Python's imap_unordered.
func ExampleMapSeqUnordered() {
	p := mp.NewPool(4)
	var got []string
	for s, err := range mp.MapSeqUnordered(context.Background(), p, func(_ context.Context, d time.Duration) (string, error) {
		return d.String(), nil
	}, slices.Values([]time.Duration{time.Second, time.Minute, time.Hour})) {
		if err == nil {
			got = append(got, s)
		}
	}
	slices.Sort(got)
	fmt.Println(got)
	p.Close()
	_ = p.Join(context.Background())
	// Output: [1h0m0s 1m0s 1s]
}

// Go is fire-and-forget: the errors of its tasks are reported by Join.
func ExamplePool_Go() {
	p := mp.NewPool(2)
	for i := range 3 {
		_ = p.Go(func(context.Context) error {
			if i == 1 {
				return fmt.Errorf("task %d failed", i)
			}
			return nil
		})
	}
	p.Close()
	fmt.Println(p.Join(context.Background()))
	fmt.Println(p.Stats().Completed, "completed,", p.Stats().Failed, "failed")
	// Output:
	// task 1 failed
	// 2 completed, 1 failed
}

// Terminate fails queued tasks with ErrTerminated and cancels running ones.
func ExamplePool_Terminate() {
	p := mp.NewPool(1)
	started := make(chan struct{})
	running := mp.ApplyAsync(context.Background(), p, func(ctx context.Context, _ int) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, context.Cause(ctx)
	}, 0)
	<-started
	queued := mp.ApplyAsync(context.Background(), p, func(context.Context, int) (int, error) { return 1, nil }, 1)
	p.Terminate()
	_, err1 := running.Get(context.Background())
	_, err2 := queued.Get(context.Background())
	fmt.Println(err1)
	fmt.Println(err2)
	fmt.Println(p.Join(context.Background()))
	// Output:
	// mp: terminated
	// mp: terminated
	// <nil>
}
