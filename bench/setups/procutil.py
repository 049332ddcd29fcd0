"""Process helpers every setup shares: die with the runner, pin to CPUs, defer signals during cleanup."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
from typing import Iterator

PR_SET_PDEATHSIG = 1
_DEFERRED = (signal.SIGINT, signal.SIGTERM)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Popen preexec_fn: the kernel sends the child `sig` (SIGKILL) when the runner dies, even by
    SIGKILL, so a killed run cannot leave apps or QEMUs behind (containers belong to dockerd: bench clean)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass  # not Linux: `bench clean` still finds orphans by their command line


def descendant_pids(pid: int) -> list[int] | None:
    """Every descendant of `pid`, read from /proc/PID/task/TID/children: a few small files per
    process instead of psutil's scan of every process on the host (~1.5 ms with a hundred, paid on
    every refresh of the sampler). None when the kernel has no such file (CONFIG_PROC_CHILDREN)."""
    if not os.path.exists("/proc/thread-self/children"):
        return None
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # gone meanwhile
        for thread in threads:  # a child is listed under the thread that forked it
            try:
                with open(f"/proc/{parent}/task/{thread}/children", "rb") as children:
                    pids = [int(child) for child in children.read().split()]
            except (OSError, ValueError):
                continue  # the thread ended meanwhile
            found += pids
            pending += pids
    return found


def pin_process(pid: int, cpus: tuple[int, ...]) -> bool:
    """Pin every thread of a process to `cpus` (sched_setaffinity on one pid moves one thread only).

    Threads created later inherit their creator's mask. False when the process is gone or ours
    to pin is not allowed.
    """
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    pinned = True
    for thread in threads:
        try:
            os.sched_setaffinity(int(thread), cpus)
        except OSError:
            pinned = False
    return pinned


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then deliver them.

    Wraps a setup's stop and the undoing of a half-done launch: an interrupt that lands inside
    them would otherwise leave a container or a VM running. The Python-level handlers are swapped
    (a blocked signal mask would not do: the kernel hands a process signal to any thread that does
    not block it, and Python then raises in the main thread anyway). Outside the main thread,
    where Python cannot install handlers, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if pending:
            signal.raise_signal(pending[0])  # the restored handler raises KeyboardInterrupt / RunInterrupted


def handle_exited(handle: object) -> bool:
    """True when a launch handle with a Popen-like poll() says the app's process has exited."""
    poll = getattr(handle, "poll", None)
    return callable(poll) and poll() is not None
