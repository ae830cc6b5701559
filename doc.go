// Package mp provides Python-style concurrency primitives for Go: worker
// pools, queues, threads and real child processes, with typed results,
// context cancellation and no lost errors.
//
// mp is named after Python's "import multiprocessing as mp". Programs
// written with Python's threading, queue and multiprocessing modules keep
// their shape: a pool with map, apply_async, apply, close and join; a
// JoinableQueue with task_done and join; a Process that really is a
// separate OS process.
//
// # Tasks
//
// Every back-end runs the same task shape, [Func]:
//
//	func(ctx context.Context, arg A) (R, error)
//
// A task runs on goroutines as it is. To run in a child process it must be
// registered at package level with [Register], and the program must call
// [Main] first in main and in TestMain.
package mp
