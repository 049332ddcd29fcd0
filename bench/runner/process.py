"""The runner's own process during a run: pinned to the load CPUs, and SIGTERM taken as Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Iterator

from bench.events import RunInterrupted


@contextlib.contextmanager
def pinned(cpus: tuple[int, ...]) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises RunInterrupted in the main thread, as Ctrl-C does."""
    def handler(signum, frame):
        raise RunInterrupted("terminated (SIGTERM)")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
