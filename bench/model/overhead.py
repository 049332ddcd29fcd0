"""A cell's figure as a ratio to the baseline's: paired by round, with its interval and verdict."""

from __future__ import annotations

from dataclasses import dataclass

from bench import stats
from bench.model.cell import Cell, LayerKey
from bench.model.rounds import combine
from bench.model.figures import seed_parts, sub_seed
from bench.results import FIRST_APP
from bench.figures import HEADLINE_METRICS, metric, state_of, verdict
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
    app: str = FIRST_APP
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


STARTUP_WORKLOAD = "start-up"  # start-up overhead belongs to a setup variant, not to one workload


@dataclass(frozen=True)
class Pairing:
    """A run's cells against its baseline's, round by round: the overhead rows every output reads."""

    cells: list[Cell]
    baseline: str | None
    seed: int
    multi_app: bool
    min_effect: float

    def _bases(self) -> dict[tuple[str, str], Cell]:
        bases: dict[tuple[str, str], Cell] = {}
        for cell in self.cells:
            if cell.setup == self.baseline:
                bases.setdefault((cell.workload, cell.app), cell)
        return bases

    def cell_rows(self) -> list[Overhead]:
        """Each non-baseline cell against the baseline's cell of its app and workload, per metric."""
        bases, rows = self._bases(), []
        for cell in self.cells:
            base = bases.get((cell.workload, cell.app))
            if cell.setup == self.baseline or base is None:
                continue
            for metric_key in HEADLINE_METRICS + ("latency_p50_ms",):
                mine, theirs = cell.rounds(metric_key), base.rounds(metric_key)
                if metric_key == "startup_s" or not mine or not theirs:
                    continue
                pairs = pair_rounds(mine, theirs, cell.round_times, base.round_times)
                unpaired = stats.ratio_ci(cell.values(metric_key), base.values(metric_key),
                                          sub_seed(self.seed, *cell.seed_parts, metric_key))
                rows.append(overhead_row(cell.setup, cell.variant, cell.workload, metric_key, pairs, unpaired,
                                         cell.app, self.multi_app, self.min_effect))
        return rows

    def startup_rows(self) -> list[Overhead]:
        """Start-up per setup variant and app: every fresh start of its cells, one value per round."""
        layers: dict[tuple[str, str, str], list[Cell]] = {}
        for cell in self.cells:
            if cell.values("startup_s"):
                layers.setdefault((cell.setup, cell.variant, cell.app), []).append(cell)
        rows = []
        for (setup, variant, app), cells in layers.items():
            base = [cell for (other, _, its_app), found in layers.items() if other == self.baseline and its_app == app
                    for cell in found]
            if setup == self.baseline or not base:
                continue
            (mine, my_times), (theirs, their_times) = layer_rounds(cells), layer_rounds(base)
            unpaired = stats.ratio_ci([v for c in cells for v in c.values("startup_s")],
                                      [v for c in base for v in c.values("startup_s")],
                                      sub_seed(self.seed, *seed_parts(setup, variant, None, app), "startup_s"))
            rows.append(overhead_row(setup, variant, STARTUP_WORKLOAD, "startup_s",
                                     pair_rounds(mine, theirs, my_times, their_times), unpaired, app,
                                     self.multi_app, self.min_effect))
        return rows

    def round_ratios(self, cell: Cell, metric_key: str) -> list[float]:
        """The cell's per-round ratios to its baseline cell; empty for a baseline cell."""
        base = self._bases().get((cell.workload, cell.app))
        if base is None or cell.setup == self.baseline:
            return []
        pairs = pair_rounds(cell.rounds(metric_key), base.rounds(metric_key), cell.round_times, base.round_times)
        return [mine / theirs for mine, theirs in pairs if mine > 0 and theirs > 0]
