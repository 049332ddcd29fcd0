"""What a load generator is asked to do (LoadSpec) and what it measured (LoadResult), the same
for the built-in generator and for wrk, and when a result says the generator was the bottleneck."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from bench.netutil import LOOPBACK

# Headers every request carries, from either generator, so the app does the same work for a request
# whichever generator sent it: layerbench's app parses both and echoes the trace id (~6 us of its
# ~55 us of CPU per /hello here). The built-in generator sends a new trace id per request; wrk one
# fixed id (a Lua request() per request would slow wrk itself down).
USER_AGENT = "layerbench"
TRACE_HEADER = "X-Trace-Id"
WRK_TRACE_ID = "wrk-0"

# A generator whose CPUs were this busy (running, or ready to run and waiting for the CPU) over
# the measured window was the limit: the figure measures the client, not the server.
GENERATOR_BOUND_BUSY = 0.9


@dataclass(frozen=True)
class LoadSpec:
    """What load to apply. `rate_rps` is required for mode "open" and ignored for "closed".

    `processes`: how many generator processes share the connections (built-in generator only);
    "auto" runs one per CPU the calling process may use, each pinned to its CPU.
    `host`: 127.0.0.1, except in a split run, where it is the address the target's app listens on.
    """

    path: str = "/hello"
    mode: str = "closed"
    connections: int = 8
    duration_s: float = 10.0
    warmup_s: float = 1.0
    rate_rps: float | None = None
    timeout_s: float = 10.0
    processes: int | str = 1
    host: str = LOOPBACK

    def process_count(self) -> int:
        """How many generator processes this spec runs (never more than connections)."""
        if self.processes == "auto":
            wanted = len(os.sched_getaffinity(0))
        elif isinstance(self.processes, int) and not isinstance(self.processes, bool) and self.processes >= 1:
            wanted = self.processes
        else:
            raise ValueError(f"processes must be a whole number >= 1 or 'auto', not {self.processes!r}")
        return max(1, min(wanted, self.connections))


@dataclass
class LoadResult:
    """Every latency of the measured window, errors by kind, the window's bounds, and how busy the
    generator itself was over that window."""

    requests: int  # completed with a 2xx inside the measured window
    errors: dict[str, int]
    duration_s: float  # length of the measured window
    latency_ms: np.ndarray  # one per completed request, client-side
    app_ms: np.ndarray  # Server-Timing app;dur of the same requests (NaN when the server sends none)
    window: tuple[float, float] = (0.0, 0.0)  # time.monotonic() at start and end of the window
    sent: int = 0
    generator: str = "builtin"
    notes: dict = field(default_factory=dict)
    generator_processes: int = 1  # processes (or wrk threads) that generated the load
    generator_cpu_s: float | None = None  # their on-CPU seconds over the window, summed
    generator_wait_s: float | None = None  # their seconds ready to run but waiting for a CPU, summed
    generator_busy_fraction: float | None = None  # cpu_s / (window * processes)
    # The longest stretch of the window in which no request completed, and when it ended (s into the
    # window); None when the generator cannot tell (wrk).
    longest_gap_s: float | None = None
    longest_gap_end_s: float | None = None

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def generator_runnable_fraction(self) -> float | None:
        """(cpu_s + wait_s) / (window * processes): the share of the window the generator was
        not idle waiting for the server. None when the kernel gives no run-queue wait."""
        if self.generator_busy_fraction is None or self.generator_wait_s is None or self.generator_cpu_s is None:
            return None
        capacity_s = self.duration_s * self.generator_processes
        return (self.generator_cpu_s + self.generator_wait_s) / capacity_s if capacity_s > 0 else None


def busy_fraction(cpu_s: float | None, window_s: float, processes: int) -> float | None:
    """CPU seconds as a share of the window times the processes that could use it."""
    if cpu_s is None or window_s <= 0 or processes < 1:
        return None
    return cpu_s / (window_s * processes)


def is_generator_bound(result: LoadResult) -> bool:
    """True when the generator's busy fraction (or, where the kernel gives it, its runnable
    fraction, which also counts waiting for a shared CPU) reached GENERATOR_BOUND_BUSY."""
    figures = (result.generator_busy_fraction, result.generator_runnable_fraction)
    return any(figure is not None and figure >= GENERATOR_BOUND_BUSY for figure in figures)


def longest_gap(completions: np.ndarray, bin_s: float, window_s: float) -> tuple[float, float]:
    """(seconds, end in s into the window) of the longest run of bins with no completion, over the
    bins that cover the window; precise to one bin."""
    bins = max(1, int(np.ceil(window_s / bin_s)))
    empty = np.concatenate(([False], np.asarray(completions[:bins]) == 0, [False]))
    edges = np.flatnonzero(np.diff(empty.astype(np.int8)))  # starts and ends of runs of empty bins
    if edges.size == 0:
        return 0.0, 0.0
    starts, ends = edges[0::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return min(float(ends[longest] - starts[longest]) * bin_s, window_s), min(float(ends[longest]) * bin_s, window_s)
