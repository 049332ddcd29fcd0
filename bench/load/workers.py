"""Several generator processes, one per load CPU, for when one core of Python cannot keep up.

Each worker is pinned to one CPU and runs its share of the connections on its own event loop.
The parent waits until every worker is ready, then gives all of them one start time on the
shared monotonic clock, so their warm-ups and measured windows line up to within a timer tick.
Workers are spawned, not forked: the caller may have threads (the sampler), and fork with
threads is unsafe. Ctrl-C reaches the parent, which terminates the workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

from bench.load.connection import RawResult, drive, event_loop_factory
from bench.load.spec import LoadSpec

_READY_TIMEOUT_S = 60.0  # spawning imports the package again; slow on a loaded machine
_START_MARGIN_S = 0.05  # time for the "go" message to reach every worker before the common start


def _worker(pipe, port: int, spec: LoadSpec, numbers: list[int], cpu: int) -> None:
    """One generator process: pin, say ready, wait for the start time, drive, send the result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    try:
        os.sched_setaffinity(0, {cpu})
        pipe.send(("ready", None))
        _, start = pipe.recv()
        clients: list = []
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            raw = runner.run(drive(port, spec, numbers, start, clients))
        pipe.send(("done", raw))
    except Exception as error:  # reported to the parent as one line
        pipe.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        pipe.close()


def _receive(pipe, index: int, expected: str, timeout_s: float):
    if not pipe.poll(timeout_s):
        raise RuntimeError(f"load generator process {index} sent no {expected!r} within {timeout_s:.0f} s")
    try:
        kind, payload = pipe.recv()
    except EOFError:
        raise RuntimeError(f"load generator process {index} exited early") from None
    if kind == "error":
        raise RuntimeError(f"load generator process {index} failed: {payload}")
    return payload


def _stop(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


def run_processes(port: int, spec: LoadSpec, count: int) -> list[RawResult]:
    """Drive `spec` from `count` processes pinned round-robin to the CPUs this process may use;
    connection n goes to process n % count. Returns each process's raw result."""
    cpus = sorted(os.sched_getaffinity(0))
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    try:
        for index in range(count):
            parent_end, child_end = context.Pipe()
            numbers = list(range(index, spec.connections, count))
            process = context.Process(target=_worker, name=f"layerbench-load-{index}", daemon=True,
                                      args=(child_end, port, spec, numbers, cpus[index % len(cpus)]))
            process.start()
            child_end.close()
            pipes.append(parent_end)
            processes.append(process)
        for index, pipe in enumerate(pipes):
            _receive(pipe, index, "ready", _READY_TIMEOUT_S)
        start = time.monotonic() + _START_MARGIN_S
        for pipe in pipes:
            pipe.send(("go", start))
        finish_s = _START_MARGIN_S + spec.warmup_s + spec.duration_s + spec.timeout_s + 30
        return [_receive(pipe, index, "done", finish_s) for index, pipe in enumerate(pipes)]
    finally:
        _stop(processes)
        for pipe in pipes:
            pipe.close()
