"""multiprocessing.Lock and multiprocessing.Value, as mp's Lock and Value.

Lock: acquire and release, uncontended, in the process that made the lock.
LockChild: the same in a child process (a Pool worker that got the lock
through its initializer, the only way Python shares a Lock with a pool).
ValueAdd: `with v.get_lock(): v.value += 1` on a Value('q'), Python's
atomic add.
"""

import multiprocessing as mp
import time

from common import Case, main, timed


def lock_loop(lock, n):
    for _ in range(n):
        lock.acquire()
        lock.release()


def lock_in_process(n):
    lock = mp.Lock()
    return timed(lock_loop, lock, n)


_lock = None


def _init(lock):
    global _lock
    _lock = lock


def _child_loop(n):
    start = time.perf_counter()
    lock_loop(_lock, n)
    return time.perf_counter() - start


def lock_in_child(n):
    lock = mp.Lock()
    with mp.Pool(1, initializer=_init, initargs=(lock,)) as pool:
        pool.apply(_child_loop, (10,))  # the worker is up
        return pool.apply(_child_loop, (n,))


def value_add(n):
    v = mp.Value("q", 0)

    def body():
        for _ in range(n):
            with v.get_lock():
                v.value += 1

    s = timed(body)
    assert v.value == n
    return s


CASES = [
    Case("multiprocessing.Lock acquire+release", "Lock", "mp.Lock", 1_000_000, 10_000, lock_in_process),
    Case("multiprocessing.Lock acquire+release in a child", "LockChild", "mp.Lock", 1_000_000, 10_000, lock_in_child),
    Case("multiprocessing.Value get_lock + value += 1", "ValueAdd", "mp.Value+get_lock", 1_000_000, 10_000, value_add),
]

if __name__ == "__main__":
    main(CASES)
