"""multiprocessing.Process start/join: the Python twin of mp's Process."""

import multiprocessing
import time

from common import Case, main, timed


def square(x):
    return x * x


def start_join(method):
    ctx = multiprocessing.get_context(method)

    def run(n):
        def body():
            for _ in range(n):
                p = ctx.Process(target=square, args=(3,))
                p.start()
                p.join()
                assert p.exitcode == 0

        return timed(body)

    return run


def start_join_spaced(method, gap=0.020):
    """Start and join a Process every gap seconds, timing only start+join,
    as a server that starts a child per request does."""
    ctx = multiprocessing.get_context(method)

    def run(n):
        total = 0.0
        for _ in range(n):
            time.sleep(gap)
            start = time.perf_counter()
            p = ctx.Process(target=square, args=(3,))
            p.start()
            p.join()
            total += time.perf_counter() - start
            assert p.exitcode == 0
        return total

    return run


CASES = [
    Case("Process start+join (fork)", "ProcessStart", "Process(fork)", 200, 10, start_join("fork")),
    Case("Process start+join spaced 20 ms (fork)", "ProcessStartSpaced", "Process(fork)", 100, 5, start_join_spaced("fork")),
    Case("Process start+join (spawn)", "ProcessStart", "Process(spawn)", 20, 2, start_join("spawn")),
]

if __name__ == "__main__":
    main(CASES)
