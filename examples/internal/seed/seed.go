// Package seed holds the Go twins of the Python programs in the seed
// document, one function per idiom. The per-idiom programs in examples/ and
// examples/tour call them, so that each twin is written once.
package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/mpgo/mp"
)

// syncWriter serialises the writes of concurrent tasks, as Python's print
// does for lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// printer returns the task of §4–§6: print i. w must be safe for
// concurrent use.
func printer(w io.Writer) mp.Func[int, struct{}] {
	return func(_ context.Context, i int) (struct{}, error) {
		fmt.Fprintln(w, i)
		return struct{}{}, nil
	}
}

// Threads is the twin of §2, two threading.Thread that print their name,
// then "main".
func Threads(ctx context.Context, w io.Writer) error {
	w = &syncWriter{w: w}
	test := func(_ context.Context, name string) (struct{}, error) {
		fmt.Fprintln(w, name)
		return struct{}{}, nil
	}
	t1 := mp.NewThread(test, "thread1")
	t2 := mp.NewThread(test, "thread2")
	if err := t1.Start(); err != nil {
		return err
	}
	if err := t2.Start(); err != nil {
		return err
	}
	if err := t1.Join(ctx); err != nil {
		return err
	}
	if err := t2.Join(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "main")
	return nil
}

// ProcessImages is the twin of §3, ThreadPoolExecutor.map over n "images".
// Each task sleeps for sleep, as Python's time.sleep(0.1) stands for I/O.
// The first show images print Python's line; the others only count.
// It returns how many images were processed.
func ProcessImages(ctx context.Context, w io.Writer, n, workers int, sleep time.Duration, show int) (int, error) {
	w = &syncWriter{w: w}
	type image struct {
		index int
		path  string
	}
	images := make([]image, n)
	for i := range images {
		images[i] = image{i, fmt.Sprintf("image_%d", i)}
	}
	processImage := func(ctx context.Context, img image) (struct{}, error) {
		if img.index < show {
			fmt.Fprintf(w, "Processing image: %s\n", filepath.Base(img.path))
		}
		select {
		case <-time.After(sleep):
			return struct{}{}, nil
		case <-ctx.Done():
			return struct{}{}, ctx.Err()
		}
	}
	p := mp.NewPool(workers)
	// Each image is a task of its own (ChunkSize(1)), as in Python: the
	// tasks wait rather than compute, so batching them would only
	// serialise the waits.
	out, err := mp.Map(ctx, p, processImage, images, mp.ChunkSize(1))
	p.Close()
	if jerr := p.Join(ctx); err == nil {
		err = jerr
	}
	return len(out), err
}

// PoolMap is the twin of §4, Pool(8).map(test, range(100)) then close and
// join.
func PoolMap(ctx context.Context, w io.Writer) error {
	w = &syncWriter{w: w}
	p := mp.NewPool(8)
	fmt.Fprintln(w, "多进程开始执行")
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	_, err := mp.Map(ctx, p, printer(w), items)
	p.Close()
	if jerr := p.Join(ctx); err == nil {
		err = jerr
	}
	return err
}

// ApplyAsync is the twin of §5: 100 apply_async on Pool(8), close, then
// join.
func ApplyAsync(ctx context.Context, w io.Writer) error {
	w = &syncWriter{w: w}
	p := mp.NewPool(8)
	test := printer(w)
	for i := range 100 {
		mp.ApplyAsync(ctx, p, test, i)
	}
	p.Close()
	fmt.Fprintln(w, "多进程开始执行")
	// Nobody calls Get: Join reports the errors of those results, if any.
	err := p.Join(ctx)
	fmt.Fprintln(w, "多进程结束执行")
	return err
}

// Apply is the twin of §6: 100 blocking apply on Pool(8), then close and
// join.
func Apply(ctx context.Context, w io.Writer) error {
	w = &syncWriter{w: w}
	p := mp.NewPool(8)
	test := printer(w)
	for i := range 100 {
		if _, err := mp.Apply(ctx, p, test, i); err != nil {
			p.Terminate()
			return errors.Join(err, p.Join(ctx))
		}
	}
	fmt.Fprintln(w, "多进程结束执行")
	p.Close()
	return p.Join(ctx)
}
