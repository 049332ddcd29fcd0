"""How busy a load generator was: CPU time it ran, and time it was ready to run but waited for a
CPU, read from the kernel's per-thread scheduler statistics (/proc/.../schedstat).

The wait matters: a generator that shares its core with something else may run only 60% of the
window and still be the bottleneck, because it was never idle. On-CPU time plus run-queue wait
over the window says how much of the window it spent not waiting for the server.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple


class Clock(NamedTuple):
    cpu_s: float  # on-CPU time so far
    wait_s: float | None  # time runnable but waiting for a CPU so far; None without schedstat


def _schedstat(path: str) -> tuple[float, float]:
    with open(path, "rb") as stat:
        run_ns, wait_ns, _slices = stat.read().split()
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def thread_clock() -> Clock:
    """The calling thread's clock (the event loop's thread is the whole built-in generator)."""
    try:
        return Clock(*_schedstat("/proc/thread-self/schedstat"))
    except (OSError, ValueError):
        return Clock(time.thread_time(), None)


def process_clock(pid: int) -> Clock | None:
    """Sum over the threads of process `pid` alive now; None once the process is gone."""
    cpu_s = wait_s = 0.0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            run, wait = _schedstat(f"/proc/{pid}/task/{task}/schedstat")
            cpu_s += run
            wait_s += wait
    except (OSError, ValueError):
        return None
    return Clock(cpu_s, wait_s)


def elapsed(start: Clock, end: Clock) -> Clock:
    """What a clock advanced between two readings."""
    wait_s = None if start.wait_s is None or end.wait_s is None else end.wait_s - start.wait_s
    return Clock(end.cpu_s - start.cpu_s, wait_s)
