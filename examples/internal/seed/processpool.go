package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/mpgo/mp"
)

// test is the task of §4–§6 on a process pool. It runs in a worker
// process, so it is registered at package level, and it returns its line
// for the parent to print: a worker's output would bypass the parent's w.
var test = mp.Register(func(_ context.Context, i int) (string, error) {
	return strconv.Itoa(i), nil
})

// ProcessPoolMap is the twin of §4 on worker processes:
// multiprocessing.Pool(8).map(test, range(100)), then close and join.
func ProcessPoolMap(ctx context.Context, w io.Writer) error {
	p := mp.NewProcessPool(8)
	fmt.Fprintln(w, "多进程开始执行")
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	out, err := mp.Map(ctx, p, test, items)
	for _, line := range out {
		fmt.Fprintln(w, line)
	}
	p.Close()
	if jerr := p.Join(ctx); err == nil {
		err = jerr
	}
	return err
}

// ProcessPoolApplyAsync is the twin of §5 on worker processes: 100
// apply_async on Pool(8), close, then join. Python's task prints in the
// worker; here a callback prints each result in the parent as it arrives.
func ProcessPoolApplyAsync(ctx context.Context, w io.Writer) error {
	w = &syncWriter{w: w}
	p := mp.NewProcessPool(8)
	for i := range 100 {
		mp.ApplyAsync(ctx, p, test, i).Then(func(line string, err error) {
			if err == nil {
				fmt.Fprintln(w, line)
			}
		})
	}
	p.Close()
	fmt.Fprintln(w, "多进程开始执行")
	err := p.Join(ctx)
	fmt.Fprintln(w, "多进程结束执行")
	return err
}

// ProcessPoolApply is the twin of §6 on worker processes: 100 blocking
// apply on Pool(8), then close and join.
func ProcessPoolApply(ctx context.Context, w io.Writer) error {
	p := mp.NewProcessPool(8)
	for i := range 100 {
		line, err := mp.Apply(ctx, p, test, i)
		if err != nil {
			p.Terminate()
			return errors.Join(err, p.Join(ctx))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w, "多进程结束执行")
	p.Close()
	return p.Join(ctx)
}
