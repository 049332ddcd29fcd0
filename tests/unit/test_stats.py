"""Statistics: intervals contain what they should, ratios and verdicts say the right thing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import stats
from bench.figures import state_of, verdict


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
    single = stats.median_ci([5.0], seed=0)
    assert (single.median, single.low, single.high, single.n) == (5.0, 5.0, 5.0, 1)
    assert math.isnan(stats.median_ci([], seed=0).median)


def test_ratio_of_clearly_different_groups_excludes_one():
    rng = np.random.default_rng(3)
    slow = rng.normal(50, 1, 10)
    fast = rng.normal(100, 1, 10)
    ratio = stats.ratio_ci(slow, fast, seed=2)
    assert 0.45 < ratio.low <= ratio.median <= ratio.high < 0.55 and ratio.method == stats.UNPAIRED
    state = state_of("throughput_rps", stats.decide(ratio))
    assert state == "worse" and verdict("throughput_rps", ratio, state, 0.05).startswith("2.0x slower")


def test_verdict_words_follow_the_metrics_direction():
    def words(key, estimate):
        return verdict(key, estimate, state_of(key, stats.decide(estimate)), 0.05)

    assert words("latency_p99_ms", stats.Estimate(1.5, 1.4, 1.6, n=5)).startswith("slower by 50%")
    assert words("cpu_us_per_request", stats.Estimate(0.8, 0.7, 0.9, n=5)).startswith("cheaper by 20%")
    assert words("startup_s", stats.Estimate(40, 35, 45, n=5)) == "40.0x slower (interval 35.0x..45.0x)"
    assert words("throughput_rps", stats.Estimate(0.05, 0.04, 0.0625, n=5)) == "20.0x slower (interval 16.0x..25.0x)"


# ---- three states ---------------------------------------------------------------------------


@pytest.mark.parametrize("ratio, decision", [
    ((0.50, 0.45, 0.55), "lower"),  # excludes 1 and far from it
    ((1.30, 1.10, 1.50), "higher"),
    ((1.01, 0.98, 1.04), "same"),  # the whole interval within 1 +- 5%
    ((0.97, 0.96, 0.99), "same"),  # excludes 1, but within 5%: a real difference too small to matter
    ((1.02, 0.90, 1.15), "undecided"),  # spans 1 and reaches past 5%: could not tell
    ((1.03, 1.01, 1.06), "undecided"),  # excludes 1, reaches past 5%, but the estimate is within it
    ((1.50, 1.50, 1.50), "undecided"),  # one round: no interval
])
def test_a_ratio_is_decided_in_three_states_with_a_minimum_effect(ratio, decision):
    n = 1 if ratio[1] == ratio[2] else 6
    assert stats.decide(stats.Estimate(*ratio, n=n), min_effect=0.05) == decision


def test_each_state_has_its_words():
    same = stats.Estimate(1.01, 0.98, 1.04, n=6)
    assert verdict("throughput_rps", same, "same", 0.05) == "same within ±5% (interval 0.98..1.04)"
    open_ratio = stats.Estimate(1.02, 0.90, 1.15, n=6)
    assert verdict("throughput_rps", open_ratio, "undecided", 0.05) == "undecided: run more rounds (interval 0.90..1.15)"
    assert state_of("throughput_rps", "lower") == "worse" and state_of("latency_p99_ms", "lower") == "better"


# ---- pairing ----------------------------------------------------------------------------------


def _drifting_rounds(rounds: int = 8, true_ratio: float = 1.0, seed: int = 7):
    """Interleaved rounds on a machine whose speed drifts 3x over the run and jumps with a neighbour:
    each round's setup trial and baseline trial see the same state, within a few % of each other."""
    rng = np.random.default_rng(seed)
    machine = np.linspace(1.0, 3.0, rounds) * rng.choice([1.0, 0.6], rounds)  # drift, plus a neighbour
    base = 1000 * machine * rng.normal(1, 0.02, rounds)
    setup = 1000 * true_ratio * machine * rng.normal(1, 0.02, rounds)
    return list(zip(setup, base))


def test_pairing_by_round_cancels_a_drift_that_hides_the_difference_from_the_unpaired_ratio():
    pairs = _drifting_rounds(true_ratio=0.85)
    paired = stats.paired_ratio(pairs)
    unpaired = stats.ratio_ci([s for s, _ in pairs], [b for _, b in pairs], seed=1)
    assert 0.80 < paired.low <= paired.median <= paired.high < 0.90 and paired.n == 8
    assert stats.decide(paired) == "lower"
    assert unpaired.low < 1 < unpaired.high and stats.decide(unpaired) == "undecided"


def test_pairing_by_round_calls_the_same_work_same_where_unpaired_cannot_tell():
    pairs = _drifting_rounds(true_ratio=1.0, seed=11)
    assert stats.decide(stats.paired_ratio(pairs)) == "same"
    assert stats.decide(stats.ratio_ci([s for s, _ in pairs], [b for _, b in pairs], seed=1)) == "undecided"


def test_two_runs_ratio_is_the_median_of_pairwise_ratios_with_a_mann_whitney_interval():
    rng = np.random.default_rng(5)
    old, new = rng.normal(1000, 60, 20), rng.normal(870, 60, 20)
    ratio = stats.two_run_ratio(new, old)
    assert ratio.low < 0.87 < ratio.high and ratio.high < 0.95 and ratio.method == stats.HODGES_LEHMANN
    same = stats.two_run_ratio(rng.normal(1000, 60, 20), old)
    assert same.low < 1 < same.high


def test_rounds_a_neighbour_slowed_move_the_two_run_ratio_less_than_a_mean():
    """Same work in both runs, but a quarter of one run's rounds ran 1.7x slower (seen in gate-check
    runs here): the mean-based ratio calls it a change beyond 5%, the Hodges-Lehmann one does not."""
    rng = np.random.default_rng(8)
    old = rng.normal(10.0, 0.1, 24)
    new = rng.normal(10.0, 0.1, 24)
    new[::4] *= 1.7
    mean_based = stats.welch_ratio(new, old)
    assert mean_based.median > 1.10 and mean_based.low > 1  # significant and beyond 5%: the gate would fail
    robust = stats.two_run_ratio(new, old)
    assert 0.99 < robust.median < 1.02 and robust.high < 1.05


def test_the_mann_whitney_rank_matches_the_published_critical_values():
    # two-sided 5% critical values of U (the interval starts past the (U+1)-th smallest difference)
    assert [stats._mann_whitney_rank(n, n) for n in (4, 5, 8, 10, 20)] == [0, 2, 13, 23, 127]
    assert stats._mann_whitney_rank(25, 25) == 211  # normal approximation past 40 x 40 agrees here too
    assert stats._mann_whitney_rank(3, 3) is None  # 2 / 20 = 10% at best: no 95% interval


def test_two_runs_too_small_for_a_distribution_free_interval_fall_back_to_welch():
    ratio = stats.two_run_ratio([100.0, 102.0, 101.0], [110.0, 111.0, 109.0])
    assert ratio.method == stats.WELCH and ratio.high < 1


def test_starts_are_told_apart_from_trials_within_a_start():
    rng = np.random.default_rng(2)
    starts = [list(level * rng.normal(1, 0.02, 3)) for level in (1000, 1400, 700, 1100)]
    within, between = stats.variance_components(starts)
    assert within < 0.05 < 0.2 < between
    assert stats.variance_components([[1.0], [2.0]]) is None  # no start with two trials: cannot tell


def test_a_start_that_warms_up_is_seen_from_its_first_to_its_last_trial():
    starts = [[1894, 3500, 4689], [2000, 3900, 4500], [1800, 3000, 4800]]
    change, first, last = stats.drift_within_starts(starts)
    assert change.median > 2 and stats.decide(change, 0.10) == "higher" and first == 1894 and last == 4689
    noise = [[10636, 9044, 6736, 8716, 5698, 3927], [10097, 6176, 8905, 6711, 6654, 7552],
             [7324, 6942, 6365, 7813, 10265, 10083]]  # bare /hello on a busy machine: no consistent move
    assert stats.decide(stats.drift_within_starts(noise)[0], 0.10) == "undecided"


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
