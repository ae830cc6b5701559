//go:build unix

package mp_test

import (
	"context"
	"fmt"

	"github.com/mpgo/mp"
)

func cube(_ context.Context, x int) (int, error) { return x * x * x, nil }

func init() { mp.Register(cube) } // so that child processes find it by name

// The program of README's "A first program": cube, registered at package
// level, runs in four worker processes. In a program, main calls mp.Main
// first; in a test binary, TestMain does.
func Example() {
	ctx := context.Background()
	pool := mp.NewProcessPool(4) // or mp.NewPool(4): the same API on goroutines
	cubes, err := mp.Map(ctx, pool, cube, []int{1, 2, 3, 4, 5})
	pool.Close()
	fmt.Println(cubes, err, pool.Join(ctx))
	// Output: [1 8 27 64 125] <nil> <nil>
}
