//go:build unix

package mp_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mpgo/mp"
)

// triple runs in worker processes, so it is registered at package level.
var triple = mp.Register(func(_ context.Context, x int) (int, error) {
	return 3 * x, nil
})

// stubborn ignores its context: on a process pool it is killed.
var stubborn = mp.Register(func(_ context.Context, d time.Duration) (string, error) {
	time.Sleep(d)
	return "finished", nil
})

func ExampleNewProcessPool() {
	ctx := context.Background()
	p := mp.NewProcessPool(2) // two worker processes
	tripled, err := mp.Map(ctx, p, triple, []int{1, 2, 3, 4, 5})
	fmt.Println(tripled, err)

	v, err := mp.Apply(ctx, p, triple, 10)
	fmt.Println(v, err)

	// A closure cannot cross to a process: it fails at once.
	_, err = mp.Apply(ctx, p, func(_ context.Context, x int) (int, error) { return x, nil }, 1)
	fmt.Println(errors.Is(err, mp.ErrNotRegistered))

	p.Close()
	fmt.Println(p.Join(ctx))
	// Output:
	// [3 6 9 12 15] <nil>
	// 30 <nil>
	// true
	// <nil>
}

// A task that ignores its deadline is killed with its worker a grace
// period later; the worker is replaced and the pool goes on.
func ExampleGrace() {
	p := mp.NewProcessPool(1, mp.Grace(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := mp.Apply(ctx, p, stubborn, time.Hour)
	fmt.Println(err)

	v, err := mp.Apply(context.Background(), p, triple, 3)
	fmt.Println(v, err)
	p.Close()
	fmt.Println(p.Join(context.Background()))
	// Output:
	// context deadline exceeded
	// 9 <nil>
	// <nil>
}
