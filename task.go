package mp

import (
	"context"
	"runtime/debug"
)

// Func is the one task shape shared by [Thread], [Pool], [Process] and the
// process pool. The same function runs on a goroutine or, once registered
// with [Register], in a child process.
//
// A task should return promptly once ctx is done. On goroutines that is a
// request it may ignore; in a process pool a task that ignores it is killed
// together with its worker.
type Func[A, R any] func(ctx context.Context, arg A) (R, error)

// callTask runs f, turning a panic into a *PanicError with its stack.
func callTask[A, R any](ctx context.Context, f Func[A, R], a A) (r R, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f(ctx, a)
}

// callGo runs f, a task of Pool.Go, turning a panic into a *PanicError.
func callGo(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f(ctx)
}
