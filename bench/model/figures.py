"""How each figure is read off a stored trial, and the medians and seeds the model uses."""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np

from bench.results import TrialRecord
from bench.vocabulary import finite

MB = 1024 * 1024


def _load_figure(name: str, percentile: str | None = None) -> Callable[[TrialRecord], float | None]:
    def figure(trial: TrialRecord):
        if not trial.load:
            return None
        value = trial.load.get(name)
        return value.get(percentile) if percentile and isinstance(value, dict) else value
    return figure


def _cpu_per_request(trial: TrialRecord) -> float | None:
    cpu = trial.cpu_us_per_request
    return cpu["user"] + cpu["sys"] if cpu and "user" in cpu and "sys" in cpu else None


def _memory_mb(part: str) -> Callable[[TrialRecord], float | None]:
    def figure(trial: TrialRecord):
        value = trial.memory_bytes.get(part)
        return value / MB if value is not None else None
    return figure


# One definition of how each metric is read off a trial (the unit is in the key).
METRIC_OF: dict[str, Callable[[TrialRecord], float | None]] = {
    "throughput_rps": _load_figure("throughput_rps"),
    "latency_p50_ms": _load_figure("latency_ms", "p50"),
    "latency_p99_ms": _load_figure("latency_ms", "p99"),
    "cpu_us_per_request": _cpu_per_request,
    "memory_pss_mb": _memory_mb("pss"),
    "memory_uss_mb": _memory_mb("uss"),
    "memory_rss_mb": _memory_mb("rss"),
    "startup_s": lambda trial: trial.startup_s,
}


def sub_seed(base: int, *parts: str) -> int:
    """A stable seed per cell and figure, so adding a setup does not change another cell's interval."""
    return (base + zlib.crc32("/".join(parts).encode())) % 2**32


def median_of(values) -> float | None:
    """Median of the finite numbers among values; None when there are none."""
    data = [v for v in values if finite(v)]
    return float(np.median(data)) if data else None


