"""The medians and seeds the model uses (how each figure is read off a trial: bench.figures)."""

from __future__ import annotations

import zlib

import numpy as np

from bench.results import FIRST_APP
from bench.vocabulary import finite


def sub_seed(base: int, *parts: str) -> int:
    """A stable seed per cell and figure, so adding a setup does not change another cell's interval."""
    return (base + zlib.crc32("/".join(parts).encode())) % 2**32


def seed_parts(setup: str, variant: str, workload: str | None, app: str) -> tuple[str, ...]:
    """A cell's (or, without a workload, a layer's) part of a figure's seed. The python app keeps
    the seeds runs had before there were several apps, so their intervals did not move: the one
    place that rule lives."""
    return (setup, variant) + ((workload,) if workload is not None else ()) + (() if app == FIRST_APP else (app,))


def median_of(values) -> float | None:
    """Median of the finite numbers among values; None when there are none."""
    data = [v for v in values if finite(v)]
    return float(np.median(data)) if data else None
