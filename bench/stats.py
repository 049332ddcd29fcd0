"""Honest statistics: medians, percentiles, 95% intervals and overhead ratios (words live in bench.vocabulary).

Intervals: with 10 or more repeats, a percentile bootstrap of the median (seeded: the seed is
stored with the run, so a report recomputes bit for bit). With fewer, the bootstrap is known to
be far too narrow (with 3 values it can never reach past their range), so the interval is
Student's t around the median: median +- t(0.975, n-1) * s / sqrt(n), and for a ratio the same
on the log scale. Few repeats then honestly give wide intervals.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
NOISY_SPREAD = 0.10  # (max - min) / median over repeats above this flags a noisy cell
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "max": 100.0}  # max: a stall shows there
SMALL_SAMPLE = 10  # below this many values, Student's t instead of the bootstrap
# t(0.975, df) for df = 1..30; beyond that 1.96 is within 4%.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def _t975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 1.96


def interval_method(count: int, confidence: float = CONFIDENCE) -> str:
    """Which interval a cell of `count` repeats gets (stored with summaries)."""
    return "student-t" if 2 <= count < SMALL_SAMPLE and confidence == 0.95 else "bootstrap"


@dataclass(frozen=True)
class Estimate:
    """A point value with its confidence interval (same unit as the value)."""

    median: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def relative_width(self) -> float:
        """Interval width as a fraction of the median (inf when the median is 0)."""
        return (self.high - self.low) / abs(self.median) if self.median else math.inf


def _clean(values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def percentiles(latencies_ms) -> dict[str, float]:
    """p50/p90/p99/p99.9 and the maximum of raw latencies (ms); NaN when there are none."""
    data = _clean(latencies_ms)
    if data.size == 0:
        return {name: math.nan for name in PERCENTILES}
    values = np.percentile(data, list(PERCENTILES.values()))
    return {name: float(value) for name, value in zip(PERCENTILES, values)}


def median_ci(values, seed: int, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE) -> Estimate:
    """Median with a percentile-bootstrap interval. One value gives a zero-width interval."""
    data = _clean(values)
    if data.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    median = float(np.median(data))
    if data.size == 1:
        return Estimate(median, median, median)
    if interval_method(data.size, confidence) == "student-t":
        half = _t975(data.size - 1) * float(np.std(data, ddof=1)) / math.sqrt(data.size)
        # Every figure measured is a count, a time or a size: a wide interval of a few repeats
        # reaches down to 0, never below (a p99 of -4.7 ms would be nonsense, not caution).
        floor = 0.0 if np.all(data >= 0) else -math.inf
        return Estimate(median, max(median - half, floor), median + half)
    rng = np.random.default_rng(seed)
    samples = rng.choice(data, size=(resamples, data.size), replace=True)
    boot = np.median(samples, axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(median, float(low), float(high))


def ratio_ci(values, baseline, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
             confidence: float = CONFIDENCE) -> Estimate:
    """Ratio of medians (values / baseline) with an interval from resampling both groups."""
    data, base = _clean(values), _clean(baseline)
    if data.size == 0 or base.size == 0 or np.median(base) == 0:
        return Estimate(math.nan, math.nan, math.nan)
    ratio = float(np.median(data) / np.median(base))
    if data.size == 1 and base.size == 1:
        return Estimate(ratio, ratio, ratio)
    if interval_method(min(data.size, base.size), confidence) == "student-t" and ratio > 0 \
            and np.all(data > 0) and np.all(base > 0):
        # On the log scale a ratio is a difference: add the two relative variances of the centres.
        variance = sum(float(np.var(np.log(group), ddof=1)) / group.size for group in (data, base) if group.size > 1)
        half = _t975(min(data.size, base.size) - 1) * math.sqrt(variance)
        return Estimate(ratio, ratio * math.exp(-half), ratio * math.exp(half))
    rng = np.random.default_rng(seed)
    top = np.median(rng.choice(data, size=(resamples, data.size), replace=True), axis=1)
    bottom = np.median(rng.choice(base, size=(resamples, base.size), replace=True), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = top / bottom
    boot = boot[np.isfinite(boot)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(ratio, float(low), float(high))


def spread(values) -> float:
    """(max - min) / median of repeats: how much the repeats disagree (0 for one value)."""
    data = _clean(values)
    if data.size < 2 or np.median(data) == 0:
        return 0.0
    return float((data.max() - data.min()) / abs(np.median(data)))


def is_noisy(values, threshold: float = NOISY_SPREAD) -> bool:
    """True when repeats spread more than `threshold` of their median."""
    return spread(values) > threshold
