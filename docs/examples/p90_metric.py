"""A worked example of a metric (docs/extending.md), against main before issue 25's part A: the p90
latency, which every load trial stores already, named once for the outputs and read once off a trial.
Part A replaces these two tables with one metric registry: re-check this file once it lands."""

from __future__ import annotations

from bench.model.figures import METRIC_OF
from bench.vocabulary import METRICS, Metric

P90 = Metric("latency_p90_ms", "p90 latency", "ms", higher_is_better=False, worse="slower", better="faster")


def p90_of(trial) -> float | None:
    """The trial's p90 latency in ms (None for a trial that sent no load)."""
    latency = (trial.load or {}).get("latency_ms")
    return latency.get("p90") if isinstance(latency, dict) else None


def register() -> None:
    METRICS[P90.key] = P90  # how outputs name, format and judge it
    METRIC_OF[P90.key] = p90_of  # how the model reads it off a stored trial
