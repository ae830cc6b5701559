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
// # Pools
//
// A [Pool] is a fixed set of workers: Python's ThreadPool and
// ThreadPoolExecutor with [NewPool], multiprocessing.Pool and
// ProcessPoolExecutor with [NewProcessPool]. [Map] (Pool.map), [MapSeq]
// (imap), [MapSeqUnordered] (imap_unordered), [Apply] (apply) and
// [ApplyAsync] (apply_async, returning an [AsyncResult]) run a [Func] on
// it; [Pool.Go] submits fire-and-forget work. [Pool.Close] and
// [Pool.Terminate] stop it and [Pool.Join] waits, returning the errors
// nobody collected, so no error is lost.
//
// [NewProcessPool] returns the same Pool backed by long-lived worker
// processes, Python's multiprocessing.Pool: tasks must be registered with
// [Register], Map sends chunks as single messages, and ApplyAsync pipelines
// tasks to each worker, so a trivial task costs microseconds. A worker that
// dies fails only the task it was running, with an [*ExitError] naming its
// pid and signal (or re-runs it, with [Retry]), and is replaced. A task
// that ignores its context past a grace period is killed with its worker,
// which goroutines cannot do. Terminate kills the workers and resolves
// every pending result with [ErrTerminated].
//
// # Threads
//
// A [Thread] runs one task on its own goroutine with Python's
// threading.Thread lifecycle: Start, Join, Result, Alive, Done.
//
// # Queues
//
// [Queue] and [JoinableQueue] are Python's queue.Queue and
// multiprocessing.JoinableQueue: Put and Get block with a context (Python's
// timeout= is [context.WithTimeout]), TryPut and TryGet never block and
// return [ErrFull] or [ErrEmpty], and Close and CloseNow are Python 3.13's
// shutdown, after which Put returns [ErrClosed] and Get drains the queue,
// then returns [ErrClosed]. A JoinableQueue counts unfinished tasks:
// [JoinableQueue.TaskDone] marks one item done and [JoinableQueue.Join]
// waits for all of them, like [sync.WaitGroup]. [NewLIFOQueue] and
// [NewPriorityQueue] are queue.LifoQueue and queue.PriorityQueue. The zero
// value of each queue type is an empty, unbounded queue; the cost per item
// is that of a buffered channel.
//
// Queues also connect processes. A *Queue, *JoinableQueue or *[PipeEnd]
// placed in a task's argument crosses to the child as a handle: the child
// gets a value with the same methods, and the state stays in the process
// that created it. Items cross encoded, prefetched in batches, and a
// child's TaskDone calls reach the parent's Join. Join never waits on a
// dead process: items a child held when it died are delivered again to
// other consumers (at-least-once, three deliveries each), and past that
// Join returns an error wrapping [ErrLost]. An item that cannot be encoded
// fails in the Put that tried it. Large []byte and string items, and the
// []byte fields of a struct item that hold 32 KiB or more in all, travel
// beside the encoding and are received in place, without a copy; such
// fields of one item share one allocation. A received []byte of 32 KiB to
// 4 MiB reuses the memory of earlier ones the program dropped, through a
// finalizer on its first byte, which runtime.SetFinalizer must therefore
// not be given. On Linux a []byte or string item of 64 KiB or more does
// not go through the socket at all: the child copies it straight out of
// the parent's memory with process_vm_readv(2), one copy instead of two,
// while the parent holds the item. That needs the child to be allowed to
// read its parent's memory, as a debugger would: the same user, and
// neither Yama's ptrace_scope at 1 or more nor a seccomp filter against
// it. A child that is not allowed gets such items through the socket, as
// every child does when the parent's environment has MP_PULL=0. As with
// Python's feeder thread, a []byte item is read when it is sent, not when
// it is put: change it after Put only if no child may still get it.
// [Pipe] is the analogue of
// multiprocessing.Pipe, on the same machinery.
//
// # Processes
//
// [Process] runs a registered task in a child process, the analogue of
// Python's multiprocessing.Process. The child is the same binary started
// again: package initialisation, including [Register] calls, runs in it,
// and [Main], which must be the first statement of main and TestMain,
// serves the parent there and exits instead of returning. Arguments and
// results cross the process boundary encoded (gob, with []byte sent raw);
// a task's error keeps its message and, for gob-registered types, its type.
// Children never outlive their parent, and [Process.Terminate] and
// [Process.Kill] reach the child's whole process group. A child may start
// children of its own. On Windows the process APIs return
// [errors.ErrUnsupported].
//
// # Shared state
//
// [Lock], [Semaphore], [Event], [Cond], [Barrier] and [Dict] work between
// goroutines and, passed inside a task's argument like a queue, in child
// processes: the process that created one owns its state, and a child's
// calls go to it over the child's connection. They are robust where
// Python's are not: a child that dies holding a Lock or Semaphore units
// releases them, and the next acquirer gets an error wrapping [ErrLost]
// while holding them; a child that dies waiting at a Barrier breaks it
// ([ErrBrokenBarrier]). [SharedMemory], [Value] and [Array] are memory
// mapped into every process that holds them, read and written in place
// (Linux and macOS; [errors.ErrUnsupported] on Windows). Two blocking
// calls do something when ctx ends, as their Python twins do: a Barrier
// whose waiter's ctx ends is broken, and Cond.Wait re-acquires its lock
// before it returns.
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
//	multiprocessing.Pipe()                   Pipe[T]()
//	multiprocessing.Lock(), Semaphore(n)     NewLock(), NewSemaphore(n)
//	Event(), Condition(l), Barrier(n)        NewEvent(), NewCond(l), NewBarrier(n)
//	Value('q', 0), Array('d', n)             NewValue[int64](0), NewArray[float64](n)
//	shared_memory.SharedMemory(size=n)       NewSharedMemory(n)
//	Manager().dict()                         NewDict[K, V]()
//	as_completed(fs), future.cancel()        AsCompleted(ctx, rs...), r.Cancel()
//	pool.map_async, active_children()        MapAsync(ctx, p, f, items), ActiveChildren()
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
// Every blocking call takes a [context.Context] as its first argument.
// One rule holds for all of them, pools, results, queues, pipes, threads
// and processes alike: when ctx is done before the call can complete, it
// returns context.Cause(ctx), which is ctx.Err() unless the context was
// cancelled with a cause of its own ([context.WithCancelCause],
// [context.WithTimeoutCause]), and the call has no effect. Python's
// timeout= arguments are [context.WithTimeout]. A context bounds the wait
// of the call it is passed to; it does not stop work that another caller
// started. A task's own context is cancelled with cause [ErrTerminated]
// when its pool is terminated.
//
// # Misuse
//
// A mistake that no correct program makes panics with a message that
// starts with "mp:", as package sync does: a negative worker count, a
// second [JoinableQueue.TaskDone] for one item, [Pool.Join] before
// [Pool.Close] or [Pool.Terminate], [Register] after [Main], a second
// [AsyncResult.Then], options out of range. A call that is merely early or
// late in a lifecycle returns an error instead, as Python raises one:
// Start on a started [Thread] or [Process], Join or Result before Start,
// Result while the task runs, a submission to a closed pool ([ErrClosed]).
package mp
