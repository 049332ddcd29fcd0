"""A worked example of a metric (docs/extending.md): the p90 latency, which every load trial stores
already, registered once in bench.figures: how outputs name, format and judge it, and how the model
reads it off a stored trial."""

from __future__ import annotations

from bench.figures import METRICS, Metric


def p90_of(trial) -> float | None:
    """The trial's p90 latency in ms (None for a trial that sent no load)."""
    return trial.load.latency_ms.p90 if trial.load else None


P90 = Metric("latency_p90_ms", "p90 latency", "ms", higher_is_better=False, worse="slower", better="faster",
             read=p90_of)


def register() -> None:
    METRICS[P90.key] = P90  # the one registry: the model and every output read it from here
