"""multiprocessing.Queue and JoinableQueue between a parent and a child process.

Each run starts the child, puts the items from the parent and waits until the
child has consumed them all and exited, as the Go benchmarks do. The child is
started with the platform's default method (fork on Linux).
"""

import multiprocessing as mp

from common import Case, main, timed

BIG = 1 << 20


def consume(q, n, joinable):
    total = 0
    for _ in range(n):
        total += q.get()
        if joinable:
            q.task_done()
    assert total == n * (n - 1) // 2


def consume_bytes(q, n):
    total = 0
    for _ in range(n):
        total += len(q.get())
    assert total == n * BIG


def drain_joinable(q, n, tuples):
    total = 0
    for _ in range(n):
        v = q.get()
        total += len(v[1] if tuples else v)
        q.task_done()
    assert total == n * BIG


def big_items_joinable(tuples):
    """The shape of mp's BenchmarkXQueueLarge: a JoinableQueue(16), one
    child that gets each item and calls task_done (keeping nothing), the
    parent's join, then the child's. With tuples the items are (seq, bytes),
    the twin of Go's struct{Seq int; Data []byte}."""

    def run(n):
        item = bytes(BIG)

        def body():
            q = mp.JoinableQueue(16)
            p = mp.Process(target=drain_joinable, args=(q, n, tuples))
            p.start()
            for i in range(n):
                q.put((i, item) if tuples else item)
            q.join()
            p.join()
            assert p.exitcode == 0

        return timed(body)

    return run


def small_items(joinable):
    def run(n):
        def body():
            q = mp.JoinableQueue() if joinable else mp.Queue()
            p = mp.Process(target=consume, args=(q, n, joinable))
            p.start()
            for i in range(n):
                q.put(i)
            if joinable:
                q.join()
            p.join()
            assert p.exitcode == 0

        return timed(body)

    return run


def big_items(n):
    item = bytes(BIG)

    def body():
        q = mp.Queue(16)
        p = mp.Process(target=consume_bytes, args=(q, n))
        p.start()
        for _ in range(n):
            q.put(item)
        p.join()
        assert p.exitcode == 0

    return timed(body)


CASES = [
    Case("multiprocessing.Queue 100k small items to a child", "XQueue", "mp.Queue", 100_000, 5_000,
         small_items(False)),
    Case("multiprocessing.JoinableQueue 100k small items + task_done", "XQueue", "mp.JoinableQueue", 100_000, 5_000,
         small_items(True)),
    Case("multiprocessing.Queue 1000 x 1 MiB to a child", "XQueueBytes", "mp.Queue", 1_000, 50, big_items),
    Case("multiprocessing.JoinableQueue(16) 1000 x 1 MiB bytes + task_done", "XQueueLarge/bytes",
         "mp.JoinableQueue", 1_000, 50, big_items_joinable(False)),
    Case("multiprocessing.JoinableQueue(16) 1000 x (seq, 1 MiB bytes) + task_done", "XQueueLarge/struct",
         "mp.JoinableQueue", 1_000, 50, big_items_joinable(True)),
]

if __name__ == "__main__":
    main(CASES)
