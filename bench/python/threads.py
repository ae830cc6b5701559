"""Thread pools and queue.Queue: the Python twins of mp's goroutine Pool and Queue."""

import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from multiprocessing.pool import ThreadPool

from common import Case, main, timed

CORES = os.cpu_count() or 1


def nop():
    pass


def square(x):
    return x * x


def sleep_1ms():
    time.sleep(0.001)


def threadpool_submit_join(workers, task):
    """Start a ThreadPool, apply_async n tasks, close and join: timed as a whole."""

    def run(n):
        def body():
            p = ThreadPool(workers)
            for _ in range(n):
                p.apply_async(task)
            p.close()
            p.join()

        return timed(body)

    return run


def executor_submit_join(workers, task):
    def run(n):
        def body():
            with ThreadPoolExecutor(workers) as ex:
                for _ in range(n):
                    ex.submit(task)

        return timed(body)

    return run


def threadpool_future(n):
    with ThreadPool(CORES) as p:

        def body():
            rs = [p.apply_async(square, (i,)) for i in range(n)]
            out = [r.get() for r in rs]
            assert out[-1] == (n - 1) ** 2

        return timed(body)


def executor_future(n):
    with ThreadPoolExecutor(CORES) as ex:

        def body():
            fs = [ex.submit(square, i) for i in range(n)]
            out = [f.result() for f in fs]
            assert out[-1] == (n - 1) ** 2

        return timed(body)


def threadpool_map(n):
    with ThreadPool(CORES) as p:
        items = range(n)
        return timed(lambda: p.map(square, items))


def executor_map(n):
    with ThreadPoolExecutor(CORES) as ex:
        items = range(n)
        return timed(lambda: list(ex.map(square, items)))


def queue_pc(producers, consumers):
    """queue.Queue(1024): producers put n ints, consumers get and task_done, join."""

    def run(n):
        def body():
            q = queue.Queue(1024)

            def consume():
                while True:
                    item = q.get()
                    q.task_done()
                    if item is None:
                        return

            def produce(start):
                for i in range(start, n, producers):
                    q.put(i)

            cs = [threading.Thread(target=consume) for _ in range(consumers)]
            ps = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
            for t in cs + ps:
                t.start()
            for t in ps:
                t.join()
            q.join()
            for _ in cs:
                q.put(None)
            for t in cs:
                t.join()

        return timed(body)

    return run


CASES = [
    Case("ThreadPool submit+join 2 workers", "SubmitJoin/workers=2", "ThreadPool", 100_000, 2_000,
         threadpool_submit_join(2, nop)),
    Case("ThreadPoolExecutor submit+join 2 workers", "SubmitJoin/workers=2", "ThreadPoolExecutor", 100_000, 2_000,
         executor_submit_join(2, nop)),
    Case("ThreadPool submit+join 1000 workers", "SubmitJoin/workers=1000", "ThreadPool", 100_000, 2_000,
         threadpool_submit_join(1000, nop)),
    Case("ThreadPoolExecutor submit+join 1000 workers", "SubmitJoin/workers=1000", "ThreadPoolExecutor", 100_000, 2_000,
         executor_submit_join(1000, nop)),
    Case("ThreadPool apply_async+get", "Future", "ThreadPool", 100_000, 2_000, threadpool_future),
    Case("ThreadPoolExecutor submit+result", "Future", "ThreadPoolExecutor", 100_000, 2_000, executor_future),
    Case("ThreadPool.map x*x", "Map", "ThreadPool", 1_000_000, 10_000, threadpool_map),
    Case("ThreadPoolExecutor.map x*x", "Map", "ThreadPoolExecutor", 100_000, 2_000, executor_map),
    Case("ThreadPool 10k x 1 ms sleeps, 1000 workers", "Sleep", "ThreadPool", 10_000, 2_000,
         threadpool_submit_join(1000, sleep_1ms)),
    Case("ThreadPoolExecutor 10k x 1 ms sleeps, 1000 workers", "Sleep", "ThreadPoolExecutor", 10_000, 2_000,
         executor_submit_join(1000, sleep_1ms)),
    Case("queue.Queue 1 producer 1 consumer", "Queue/1P1C", "queue.Queue", 100_000, 2_000, queue_pc(1, 1)),
    Case("queue.Queue 4 producers 4 consumers", "Queue/4P4C", "queue.Queue", 100_000, 2_000, queue_pc(4, 4)),
]

if __name__ == "__main__":
    main(CASES)
