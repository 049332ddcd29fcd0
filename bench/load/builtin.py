"""The built-in load generator: raw keep-alive HTTP/1.1 against any server on 127.0.0.1.

The engine (connections, framing, schedule) is in bench.load.connection; several processes, when
asked for, in bench.load.workers. This module checks the spec, runs one or the other, merges what
they measured and says how busy the generator itself was (see bench.load.spec.is_generator_bound).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from bench.load import workers
from bench.load.connection import COMPLETION_BIN_NS, Client, RawResult, drive
from bench.load.connection import event_loop_factory as _event_loop_factory
from bench.load.signals import stop_loop_on_signals
from bench.load.spec import GENERATOR_BOUND_BUSY, LoadResult, LoadSpec, busy_fraction, is_generator_bound, longest_gap
from bench.netutil import LOOPBACK  # where the generator connects unless a split run says otherwise

__all__ = ["GENERATOR_BOUND_BUSY", "LOOPBACK", "LoadResult", "LoadSpec", "is_generator_bound", "run_load"]


def _check(spec: LoadSpec) -> int:
    if spec.mode not in ("closed", "open"):
        raise ValueError(f"load mode must be 'closed' or 'open', not {spec.mode!r}")
    if spec.mode == "open" and not spec.rate_rps:
        raise ValueError("open-loop load needs a rate_rps > 0")
    if spec.connections < 1:
        raise ValueError("connections must be at least 1")
    return spec.process_count()


def _run_here(port: int, spec: LoadSpec) -> RawResult:
    """One event loop in this thread (no process to spawn, and the caller's pinning applies)."""
    clients: list[Client] = []
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        try:
            with stop_loop_on_signals(runner.get_loop()):
                return runner.run(drive(port, spec, range(spec.connections), time.monotonic(), clients))
        finally:
            # After a normal end this is a no-op; after Ctrl-C/SIGTERM it closes the sockets
            # (the runner's close, which follows, lets the loop finish closing them).
            for client in clients:
                client.abort_all()


def _merge(raws: list[RawResult]) -> LoadResult:
    """One result from the processes' results: latencies pooled, counts summed, CPU summed."""
    latency_ms = np.concatenate([np.frombuffer(raw.latency_ns, dtype=np.int64) for raw in raws]) / 1e6
    app_ms = np.concatenate([np.frombuffer(raw.app_ms, dtype=np.float64) for raw in raws])
    errors: dict[str, int] = {}
    for raw in raws:
        for kind, count in raw.errors.items():
            errors[kind] = errors.get(kind, 0) + count
    windows_s = [raw.window[1] - raw.window[0] for raw in raws]
    duration_s = sum(windows_s) / len(windows_s)
    cpu_s = sum(raw.cpu.cpu_s for raw in raws)
    waits = [raw.cpu.wait_s for raw in raws]
    notes = {"event_loop": raws[0].event_loop, "generator_cpus": [raw.cpus for raw in raws]}
    if len(raws) > 1:
        notes["busy_fraction_per_process"] = [round(raw.cpu.cpu_s / s, 3) if s > 0 else None
                                              for raw, s in zip(raws, windows_s)]
    gap_s, gap_end_s = longest_gap(_completions(raws), COMPLETION_BIN_NS / 1e9, duration_s)
    return LoadResult(requests=len(latency_ms), errors=errors, duration_s=duration_s, latency_ms=latency_ms,
                      app_ms=app_ms.copy(), window=(min(r.window[0] for r in raws), max(r.window[1] for r in raws)),
                      sent=sum(raw.sent for raw in raws), notes=notes, generator_processes=len(raws),
                      generator_cpu_s=cpu_s, generator_wait_s=None if None in waits else sum(waits),
                      generator_busy_fraction=busy_fraction(cpu_s, duration_s, len(raws)),
                      longest_gap_s=gap_s, longest_gap_end_s=gap_end_s)


def _completions(raws: list[RawResult]) -> np.ndarray:
    """Every process's completions per bin, on the first process's bins (one clock for all)."""
    first = min(raw.bins_start_ns for raw in raws)
    total = np.zeros(max(len(raw.completions) for raw in raws), dtype=np.int64)
    for raw in raws:
        shift = (raw.bins_start_ns - first) // COMPLETION_BIN_NS  # processes open their windows within ms
        counts = np.frombuffer(raw.completions, dtype=np.uint32)[:total.size - shift]
        total[shift:shift + counts.size] += counts
    return total


def run_load(port: int, spec: LoadSpec) -> LoadResult:
    """Apply `spec` to http://spec.host:port (127.0.0.1 unless split) and return what was measured
    (blocks duration + warmup)."""
    count = _check(spec)
    raws = [_run_here(port, spec)] if count == 1 else workers.run_processes(port, spec, count)
    return _merge(raws)
