"""Statistics: intervals contain what they should, ratios and verdicts say the right thing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import stats
from bench.vocabulary import verdict


def test_median_ci_brackets_the_median_and_is_reproducible():
    values = [100, 102, 98, 101, 99, 103, 97]
    first = stats.median_ci(values, seed=1)
    assert first.low <= first.median == 100 <= first.high
    assert stats.median_ci(values, seed=1) == first


def test_few_repeats_get_a_wide_t_interval_and_many_a_bootstrap_one():
    three = stats.median_ci([100.0, 101.0, 102.0], seed=0)
    # t(0.975, 2) = 4.303; s = 1; half-width 4.303 / sqrt(3): far past the values' own range.
    assert three.low == pytest.approx(100.0 + 1 - 4.303 / 3 ** 0.5) and three.high > 103
    assert stats.interval_method(3) == "student-t" and stats.interval_method(12) == "bootstrap"
    many = stats.median_ci(list(range(100, 112)), seed=0)
    assert 100 <= many.low <= many.median <= many.high <= 111
    ratio = stats.ratio_ci([50.0, 51.0, 49.0], [100.0, 102.0, 98.0], seed=0)
    assert ratio.low < 0.5 < ratio.high and ratio.median == 0.5


def test_single_value_gives_zero_width_and_empty_gives_nan():
    assert stats.median_ci([5.0], seed=0) == stats.Estimate(5.0, 5.0, 5.0)
    assert math.isnan(stats.median_ci([], seed=0).median)


def test_ratio_of_clearly_different_groups_excludes_one():
    rng = np.random.default_rng(3)
    slow = rng.normal(50, 1, 10)
    fast = rng.normal(100, 1, 10)
    ratio = stats.ratio_ci(slow, fast, seed=2)
    assert 0.45 < ratio.low <= ratio.median <= ratio.high < 0.55
    assert verdict("throughput_rps", ratio).startswith("2.0x slower")


def test_overlapping_groups_give_no_measurable_difference():
    ratio = stats.ratio_ci([100, 104, 96, 101], [99, 103, 97, 100], seed=5)
    assert ratio.low < 1 < ratio.high
    assert verdict("throughput_rps", ratio) == "no measurable difference"


def test_verdict_direction_for_lower_is_better_metrics():
    assert verdict("latency_p99_ms", stats.Estimate(1.5, 1.4, 1.6)).startswith("slower by 50%")
    assert verdict("cpu_us_per_request", stats.Estimate(0.8, 0.7, 0.9)).startswith("cheaper by 20%")
    assert verdict("startup_s", stats.Estimate(40, 35, 45)) == "40.0x slower (interval 35.0x..45.0x)"
    assert verdict("throughput_rps", stats.Estimate(0.05, 0.04, 0.0625)) == "20.0x slower (interval 16.0x..25.0x)"


def test_percentiles_and_spread():
    latencies = np.arange(1, 1001, dtype=float)
    result = stats.percentiles(latencies)
    assert result["p50"] == 500.5 and 990 < result["p99"] < 991
    assert stats.spread([90, 100, 110]) == 0.2
    assert stats.is_noisy([90, 100, 110]) and not stats.is_noisy([99, 100, 101])


def test_a_wide_interval_of_a_positive_figure_stops_at_zero():
    # Three p99s with one far off: Student's t would reach below zero milliseconds.
    estimate = stats.median_ci([1.1, 1.2, 9.0], seed=1)
    assert estimate.low == 0.0 and estimate.high > 9.0
    signed = stats.median_ci([-1.0, 0.5, 8.0], seed=1)  # a signed quantity keeps its symmetric interval
    assert signed.low < 0.0
