"""multiprocessing.Process start/join: the Python twin of mp's Process."""

import multiprocessing

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


CASES = [
    Case("Process start+join (fork)", "ProcessStart", "Process(fork)", 200, 10, start_join("fork")),
    Case("Process start+join (spawn)", "ProcessStart", "Process(spawn)", 20, 2, start_join("spawn")),
]

if __name__ == "__main__":
    main(CASES)
