"""Honest statistics: medians, percentiles, 95% intervals, overhead ratios and three-state decisions
(words live in bench.vocabulary).

A figure of one cell: with 10 or more rounds, a percentile bootstrap of the median (seeded: the
seed is stored with the run, so a report recomputes bit for bit). With fewer, the bootstrap is
known to be far too narrow (with 3 values it can never reach past their range), so the interval is
Student's t around the median: median +- t(0.975, n-1) * s / sqrt(n). Few rounds then honestly
give wide intervals.

A ratio to the baseline is PAIRED: rounds are interleaved, so a setup's trial and the baseline's
trial of the same round ran seconds apart and shared the machine's state (a neighbour's load, a
drift). Each round gives one ratio; the estimate is their geometric mean and the interval a
Student's t on their logarithms (df = rounds - 1), so what hit both trials of a round cancels.
The unpaired figure (ratio of medians, both groups resampled) is kept beside it for comparison.

Two runs compared (the regression gate) share no rounds. Their ratio is the Hodges-Lehmann shift of
the logarithms (the median of every new/old ratio of a round of one run to a round of the other)
with its distribution-free interval (Mann-Whitney, exact for small runs): a round that a neighbour
slowed moves it far less than it moves a mean, and a shared machine makes such rounds (measured
on this kind of machine: gate-check runs where a quarter of the rounds ran 1.5-1.8x slower). Where
the runs are too small for a 95% distribution-free interval (3 rounds against 3), the ratio of
geometric means with a Welch t interval on the logarithms.

A decision has three states, never two: a ratio differs ("higher"/"lower") when its interval
excludes 1.00 and its estimate is at least `min_effect` away from 1.00; it is "same" when the
whole interval lies within 1.00 +- min_effect; otherwise it is "undecided": more rounds would tell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

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


def _t975(df: float) -> float:
    """Student's t quantile at 0.975 for df degrees of freedom (a fractional Welch df rounds down)."""
    df = max(1, int(df))
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # beyond the table: the Cornish-Fisher expansion, within 0.1% from df 30 on
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def interval_method(count: int, confidence: float = CONFIDENCE) -> str:
    """Which interval a cell of `count` repeats gets (stored with summaries)."""
    return "student-t" if 2 <= count < SMALL_SAMPLE and confidence == 0.95 else "bootstrap"


DEFAULT_MIN_EFFECT = 0.05  # a ratio must be at least 5% away from 1.00 to be called a difference
Decision = Literal["higher", "lower", "same", "undecided"]


@dataclass(frozen=True)
class Estimate:
    """A point value with its confidence interval (same unit as the value). `median` is the centre:
    the median of a cell's rounds, or the geometric mean of a paired ratio's rounds (`method` says
    which interval; `n` is how many independent units, rounds or starts, it rests on)."""

    median: float
    low: float
    high: float
    method: str = ""
    n: int = 0

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


FAST_END = 5.0  # the percentile a window's fast end is read at (bench.records.Percentiles.p5 says why)


def fast_end(values) -> float:
    """The FAST_END percentile of per-request times: as a rule, a request no neighbour interrupted;
    NaN when there are none."""
    data = _clean(values)
    return float(np.percentile(data, FAST_END)) if data.size else math.nan


def median_ci(values, seed: int, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE) -> Estimate:
    """Median with its interval (Student's t below 10 values, a percentile bootstrap from 10). One
    value gives a zero-width interval."""
    data = _clean(values)
    if data.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    median = float(np.median(data))
    method = interval_method(data.size, confidence)
    if data.size == 1:
        return Estimate(median, median, median, method, 1)
    if method == "student-t":
        half = _t975(data.size - 1) * float(np.std(data, ddof=1)) / math.sqrt(data.size)
        # Every figure measured is a count, a time or a size: a wide interval of a few repeats
        # reaches down to 0, never below (a p99 of -4.7 ms would be nonsense, not caution).
        floor = 0.0 if np.all(data >= 0) else -math.inf
        return Estimate(median, max(median - half, floor), median + half, method, int(data.size))
    rng = np.random.default_rng(seed)
    samples = rng.choice(data, size=(resamples, data.size), replace=True)
    boot = np.median(samples, axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(median, float(low), float(high), method, int(data.size))


def ratio_ci(values, baseline, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
             confidence: float = CONFIDENCE) -> Estimate:
    """The unpaired ratio of medians (values / baseline) with an interval from resampling both groups
    (Student's t on the logs below 10 values). Kept beside the paired figure, for comparison."""
    data, base = _clean(values), _clean(baseline)
    if data.size == 0 or base.size == 0 or np.median(base) == 0:
        return Estimate(math.nan, math.nan, math.nan, UNPAIRED)
    n = int(min(data.size, base.size))
    ratio = float(np.median(data) / np.median(base))
    if data.size == 1 and base.size == 1:
        return Estimate(ratio, ratio, ratio, UNPAIRED, 1)
    if interval_method(n, confidence) == "student-t" and ratio > 0 and np.all(data > 0) and np.all(base > 0):
        # On the log scale a ratio is a difference: add the two relative variances of the centres.
        variance = sum(float(np.var(np.log(group), ddof=1)) / group.size for group in (data, base) if group.size > 1)
        half = _t975(n - 1) * math.sqrt(variance)
        return Estimate(ratio, ratio * math.exp(-half), ratio * math.exp(half), UNPAIRED, n)
    rng = np.random.default_rng(seed)
    top = np.median(rng.choice(data, size=(resamples, data.size), replace=True), axis=1)
    bottom = np.median(rng.choice(base, size=(resamples, base.size), replace=True), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = top / bottom
    boot = boot[np.isfinite(boot)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(ratio, float(low), float(high), UNPAIRED, n)


def spread(values) -> float:
    """(max - min) / median of repeats: how much the repeats disagree (0 for one value)."""
    data = _clean(values)
    if data.size < 2 or np.median(data) == 0:
        return 0.0
    return float((data.max() - data.min()) / abs(np.median(data)))


def is_noisy(values, threshold: float = NOISY_SPREAD) -> bool:
    """True when repeats spread more than `threshold` of their median."""
    return spread(values) > threshold


# ---- paired and two-run ratios, decisions -------------------------------------------------------

PAIRED = "paired rounds: geometric mean of per-round ratios, Student's t on their logs"
UNPAIRED = "unpaired: ratio of medians"
WELCH = "two runs: ratio of geometric means, Welch's t on the logs"
HODGES_LEHMANN = "two runs: median of the pairwise ratios of rounds (Hodges-Lehmann), Mann-Whitney interval"


def _logs(values) -> np.ndarray:
    data = _clean(values)
    return np.log(data[data > 0])


def log_mean_interval(logs: np.ndarray, method: str) -> Estimate:
    """exp(mean) with a Student's t interval of the mean of logs; one value gives zero width."""
    if logs.size == 0:
        return Estimate(math.nan, math.nan, math.nan, method, 0)
    centre = float(np.mean(logs))
    if logs.size == 1:
        return Estimate(math.exp(centre), math.exp(centre), math.exp(centre), method, 1)
    half = _t975(logs.size - 1) * float(np.std(logs, ddof=1)) / math.sqrt(logs.size)
    return Estimate(math.exp(centre), math.exp(centre - half), math.exp(centre + half), method, int(logs.size))


def paired_ratio(pairs) -> Estimate:
    """The ratio of a setup to the baseline from (setup value, baseline value) pairs, one per round:
    the geometric mean of the per-round ratios with a t interval over rounds. Pairs with a value
    that is not positive and finite are left out."""
    ratios = [mine / base for mine, base in pairs
              if all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (mine, base))]
    return log_mean_interval(np.log(np.asarray(ratios, dtype=float)), PAIRED)


def two_run_ratio(new, old) -> Estimate:
    """new / old for two independent groups (two runs' rounds): the Hodges-Lehmann ratio with its
    Mann-Whitney interval, or (too few rounds for one) the Welch ratio of geometric means."""
    a, b = _logs(new), _logs(old)
    rank = _mann_whitney_rank(a.size, b.size)
    if rank is None:
        return welch_ratio(new, old)
    differences = np.sort(np.subtract.outer(a, b).ravel())
    centre = float(np.median(differences))
    return Estimate(math.exp(centre), math.exp(differences[rank]), math.exp(differences[-rank - 1]),
                    HODGES_LEHMANN, int(min(a.size, b.size)))


@lru_cache(maxsize=256)  # compare asks it for every cell and metric, mostly with the same round counts
def _mann_whitney_rank(n: int, m: int, confidence: float = CONFIDENCE) -> int | None:
    """The 0-based rank k such that the k-th smallest and k-th largest of the n*m pairwise
    differences bound a `confidence` interval for the shift: the largest k with P(U < k+1) <=
    (1 - confidence) / 2 under no shift. Exact (the U distribution counted) up to 40 x 40,
    the normal approximation beyond. None when no interval reaches that confidence (3 against 3)."""
    if n < 1 or m < 1:
        return None
    tail = (1 - confidence) / 2
    if n * m <= 1600:
        counts = _u_counts(n, m)
        total, below, rank = sum(counts), 0, None
        for u, count in enumerate(counts):
            below += count
            if below / total > tail:
                break
            rank = u  # P(U <= u) <= tail: the interval may start past the (u+1)-th difference
        return rank
    z = NormalDist().inv_cdf(1 - tail)
    rank = int(math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12)))
    return rank if rank >= 0 else None


def _u_counts(n: int, m: int) -> list[int]:
    """How many of the C(n+m, n) orderings give U = 0, 1, ..., n*m: the coefficients of the
    Gaussian binomial [n+m choose n] = prod over i of (1 - q^(m+i)) / (1 - q^i), in integers."""
    poly = [1] + [0] * (n * m)
    for i in range(1, n + 1):
        for k in range(n * m, m + i - 1, -1):  # times (1 - q^(m+i))
            poly[k] -= poly[k - m - i]
        for k in range(i, n * m + 1):  # divided by (1 - q^i)
            poly[k] += poly[k - i]
    return poly


def welch_ratio(new, old) -> Estimate:
    """new / old for two independent groups: ratio of geometric means, Welch's t on the logs."""
    a, b = _logs(new), _logs(old)
    if a.size == 0 or b.size == 0:
        return Estimate(math.nan, math.nan, math.nan, WELCH, 0)
    centre = float(np.mean(a) - np.mean(b))
    if a.size < 2 or b.size < 2:
        return Estimate(math.exp(centre), math.exp(centre), math.exp(centre), WELCH, int(min(a.size, b.size)))
    va, vb = float(np.var(a, ddof=1)) / a.size, float(np.var(b, ddof=1)) / b.size
    if va + vb == 0:
        return Estimate(math.exp(centre), math.exp(centre), math.exp(centre), WELCH, int(min(a.size, b.size)))
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = _t975(df) * math.sqrt(va + vb)
    return Estimate(math.exp(centre), math.exp(centre - half), math.exp(centre + half), WELCH,
                    int(min(a.size, b.size)))


def decide(ratio: Estimate, min_effect: float = DEFAULT_MIN_EFFECT) -> Decision:
    """Which way a ratio goes, in three states plus a direction (see the module docstring). A ratio
    resting on fewer than two independent units has no interval: undecided."""
    values = (ratio.median, ratio.low, ratio.high)
    if not all(math.isfinite(v) for v in values) or ratio.n == 1 or (ratio.low == ratio.high and ratio.n < 2):
        return "undecided"
    if 1 - min_effect <= ratio.low and ratio.high <= 1 + min_effect:
        return "same"
    if ratio.low > 1 and ratio.median >= 1 + min_effect:
        return "higher"
    if ratio.high < 1 and ratio.median <= 1 - min_effect:
        return "lower"
    return "undecided"


def variance_components(groups) -> tuple[float, float] | None:
    """(within, between): the spread of log values within starts and between starts (standard
    deviations, one-way random effects), from groups of a cell's trials that shared a start. None
    without at least two starts of which one holds two trials."""
    groups = [logs for logs in (_logs(group) for group in groups) if logs.size]
    if len(groups) < 2 or not any(logs.size > 1 for logs in groups):
        return None
    within_df = sum(logs.size - 1 for logs in groups)
    within = sum(float(np.sum((logs - logs.mean()) ** 2)) for logs in groups) / within_df
    means = np.array([logs.mean() for logs in groups])
    sizes = np.array([logs.size for logs in groups], dtype=float)
    grand = float(np.sum(means * sizes) / np.sum(sizes))
    between_ms = float(np.sum(sizes * (means - grand) ** 2)) / (len(groups) - 1)
    n0 = (sizes.sum() - np.sum(sizes ** 2) / sizes.sum()) / (len(groups) - 1)  # the mean group size, unbalanced
    between = max(0.0, (between_ms - within) / n0) if n0 > 0 else 0.0
    return math.sqrt(within), math.sqrt(between)


def drift_within_starts(groups) -> tuple[Estimate, float, float] | None:
    """How a figure moves from the first to the last trial of each start: the ratio last/first paired
    over starts (an Estimate: its interval says whether the move is more than noise), and the median
    first and last values. None without a start of two trials or more."""
    moves = [(group[-1], group[0]) for group in (list(_clean(g)) for g in groups)
             if len(group) >= 2 and group[0] > 0 and group[-1] > 0]
    if not moves:
        return None
    return (paired_ratio(moves), float(np.median([first for _, first in moves])),
            float(np.median([last for last, _ in moves])))
