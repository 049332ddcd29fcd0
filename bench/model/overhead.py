"""A cell's figure as a ratio to the baseline's: paired by round, with its interval and verdict."""

from __future__ import annotations

from dataclasses import dataclass

from bench import stats
from bench.model.cell import Cell, LayerKey, combine
from bench.figures import metric, state_of, verdict
from bench.vocabulary import Verdict, finite, label


@dataclass(frozen=True)
class Overhead:
    """One cell's figure as a ratio to the baseline's: paired by round, with its interval, its
    three-state verdict and, for comparison, the unpaired ratio of medians."""

    setup: str
    variant: str
    workload: str
    metric: str
    ratio: stats.Estimate  # paired rounds where the rounds pair (bench.stats.paired_ratio)
    state: Verdict  # worse, better, same or undecided
    verdict: str  # the state in words, with the interval
    app: str = "python"
    show_app: bool = False
    unpaired: stats.Estimate | None = None  # ratio of medians of the two groups (stats.ratio_ci)
    min_effect: float = stats.DEFAULT_MIN_EFFECT

    @property
    def layer_key(self) -> LayerKey:
        return LayerKey(self.setup, self.variant, self.app if self.show_app else None)

    @property
    def label(self) -> str:
        return label(*self.layer_key)

    @property
    def subject(self) -> str:
        return f"{self.label} / {self.workload} / {metric(self.metric).label}"

    @property
    def same(self) -> bool:
        return self.state == "same"

    @property
    def settled(self) -> bool:
        return self.state != "undecided"


def overhead_row(setup: str, variant: str, workload: str, metric_key: str, pairs: list[tuple[float, float]],
                 unpaired: stats.Estimate | None, app: str, show_app: bool, min_effect: float) -> Overhead:
    """The paired ratio of a cell's (or a layer's) rounds against the baseline's, judged."""
    ratio = stats.paired_ratio(pairs)
    state = state_of(metric_key, stats.decide(ratio, min_effect))
    return Overhead(setup, variant, workload, metric_key, ratio, state, verdict(metric_key, ratio, state, min_effect),
                    app, show_app, unpaired, min_effect)


def pair_rounds(mine: dict[int, float], theirs: dict[int, float], my_times: dict[int, float],
                their_times: dict[int, float]) -> list[tuple[float, float]]:
    """(mine, theirs) per round of mine: the baseline's value of the same round, or of the round
    nearest in time when the baseline lacks it (a failed trial), or nearest by number without times."""
    pairs = []
    for repeat, value in mine.items():
        if repeat in theirs:
            pairs.append((value, theirs[repeat]))
        elif theirs:
            when = my_times.get(repeat)
            nearest = min(theirs, key=lambda other: abs(their_times[other] - when)
                          if when is not None and other in their_times else abs(other - repeat) * 1e9)
            pairs.append((value, theirs[nearest]))
    return pairs


HEADLINE_LOAD_METRICS = ("throughput_rps", "latency_p99_ms", "cpu_us_per_request")


def layer_rounds(cells: list[Cell]) -> tuple[dict[int, float], dict[int, float]]:
    """Start-up values of several cells of one layer, one per round (combined), and the rounds' times."""
    by_round: dict[int, list[float]] = {}
    times: dict[int, float] = {}
    for cell in cells:
        for trial in cell.ok:
            if finite(trial.startup_s):
                by_round.setdefault(trial.repeat, []).append(trial.startup_s)
        for repeat, when in cell.round_times.items():
            times[repeat] = min(times.get(repeat, when), when)
    return {repeat: combine(values) for repeat, values in sorted(by_round.items())}, times
