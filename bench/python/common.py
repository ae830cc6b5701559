"""Shared driver of the Python workloads of mp's benchmark harness.

Each script declares its cases and calls main(cases). A case times one run of
its workload with n operations and returns the elapsed seconds; the driver
prints one machine-readable line per run:

    RESULT <workload> <implementation> <ns_per_op>

<workload> is the name of the Go benchmark it mirrors (for example
"SubmitJoin/workers=2"), so that cmd/compare can put both side by side.
"""

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Case:
    name: str  # what --case selects and the runner prints
    workload: str  # the Go benchmark's workload name
    impl: str  # the Python implementation, without spaces
    n: int  # operations per run
    quick: int  # operations per run with --quick
    run: Callable[[int], float]  # runs n operations, returns seconds


def timed(fn, *args):
    """Return the seconds fn(*args) takes."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(cases):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--count", type=int, default=5, help="runs per case")
    ap.add_argument("--case", action="append", help="run only this case (repeatable)")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    args = ap.parse_args()
    if args.list:
        for c in cases:
            print(c.name)
        return
    known = {c.name for c in cases}
    for name in args.case or []:
        if name not in known:
            sys.exit(f"unknown case {name!r}; --list shows them")
    for c in cases:
        if args.case and c.name not in args.case:
            continue
        n = c.quick if args.quick else c.n
        for _ in range(args.count):
            seconds = c.run(n)
            print(f"RESULT {c.workload} {c.impl} {seconds * 1e9 / n:.1f}", flush=True)
