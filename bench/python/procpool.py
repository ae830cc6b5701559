"""multiprocessing.Pool and ProcessPoolExecutor: the Python twins of mp's process pool.

Each pool is started before the clock starts and reused by every run of its
case, as the Go benchmarks reuse theirs.
"""

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool

from common import Case, main, timed

CORES = os.cpu_count() or 1


def square(x):
    return x * x


def pool_apply(n):
    def body(p):
        rs = [p.apply_async(square, (i,)) for i in range(n)]
        out = [r.get() for r in rs]
        assert out[-1] == (n - 1) ** 2

    return timed(body, POOL)


def pool_apply_seq(n):
    def body(p):
        for i in range(n):
            assert p.apply(square, (i,)) == i * i

    return timed(body, POOL)


def executor_submit(n):
    def body(ex):
        fs = [ex.submit(square, i) for i in range(n)]
        out = [f.result() for f in fs]
        assert out[-1] == (n - 1) ** 2

    return timed(body, EXECUTOR)


def pool_map(chunksize):
    def run(n):
        def body(p):
            out = p.map(square, range(n), chunksize)
            assert out[-1] == (n - 1) ** 2

        return timed(body, POOL)

    return run


CASES = [
    Case("multiprocessing.Pool apply_async+get", "ProcPoolApply", "Pool.apply_async", 20_000, 500, pool_apply),
    Case("multiprocessing.Pool.apply one call at a time", "ProcPoolApplySeq", "Pool.apply", 5_000, 200,
         pool_apply_seq),
    Case("ProcessPoolExecutor submit+result", "ProcPoolApply", "ProcessPoolExecutor", 10_000, 300, executor_submit),
    Case("multiprocessing.Pool.map default chunking", "ProcPoolMap/auto", "Pool.map", 100_000, 10_000,
         pool_map(None)),
    Case("multiprocessing.Pool.map chunksize=1", "ProcPoolMap/chunk=1", "Pool.map(chunksize=1)", 20_000, 500,
         pool_map(1)),
]

if __name__ == "__main__":
    with Pool(CORES) as POOL, ProcessPoolExecutor(CORES) as EXECUTOR:
        # Start the executor's workers (it starts them lazily) before timing.
        list(EXECUTOR.map(square, range(4 * CORES)))
        main(CASES)
