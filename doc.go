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
// [Main] first in main and in TestMain:
//
//	var square = mp.Register(func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		mp.Main()
//		...
//	}
//
// # Python to Go
//
//	Python                                   mp
//	threading.Thread(target=f, args=(a,))    NewThread(f, a)
//	multiprocessing.Process(target=f, ...)   NewProcess(f, a)
//	os.getpid(), current_process()           CurrentProcess()
//	ThreadPool(n), ThreadPoolExecutor(n)     NewPool(n)
//	multiprocessing.Pool(n)                  NewProcessPool(n)
//	pool.map(f, items)                       Map(ctx, p, f, items)
//	pool.imap / imap_unordered               MapSeq / MapSeqUnordered
//	pool.apply_async(f, (a,)).get(timeout)   ApplyAsync(ctx, p, f, a).Get(ctx)
//	pool.apply(f, (a,))                      Apply(ctx, p, f, a)
//	pool.close(); pool.join()                p.Close(); p.Join(ctx)
//	pool.terminate()                         p.Terminate()
//	queue.Queue(maxsize)                     NewQueue[T](maxsize)
//	multiprocessing.JoinableQueue()          NewJoinableQueue[T](0)
//	q.put / q.get / q.task_done / q.join     Put / Get / TaskDone / Join
//	q.put_nowait / q.get_nowait              TryPut / TryGet
//	q.shutdown() (3.13)                      Close (CloseNow for immediate)
//	timeout=                                 context.WithTimeout
//
// # Errors
//
// Errors are values, never lost: a task's error or panic reaches the one
// result it belongs to, and errors nobody collected are returned by
// [Pool.Join]. A panic in a task becomes a [*PanicError]; a child process
// that died becomes an [*ExitError]. Test for the sentinel errors with
// [errors.Is].
//
// # Cancellation
//
// Every blocking call takes a [context.Context] as its first argument and
// returns ctx.Err() (or [context.Cause]) when it is done first. Python's
// timeout= arguments are [context.WithTimeout]. A context bounds the wait
// of the call it is passed to; it does not stop work that another caller
// started.
package mp
