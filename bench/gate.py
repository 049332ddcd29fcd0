"""A regression gate for CI: fail only on a change that is both beyond its threshold and significant
(the rule of Firecracker's A/B tests), so noise does not fail a build and a real slowdown does.

A threshold is a metric and a signed percentage, `throughput_rps:-5%` or `latency_p99_ms:+20%`: the
sign is the bad direction (a metric where higher is better regresses by dropping). Prefixed with
`overhead.` (`overhead.throughput_rps:-5%`) it gates a layer's ratio to the baseline within each run
instead of the absolute figure: a faster or slower machine then cancels out. Prefixed with
`calibrated.` it gates the figure per unit of machine speed, measured beside every trial of a run
whose scenario says `calibrate: true` (bench.metrics.speed): for runs of the baseline alone.

Each cell of BASE is judged against each later run, on the runs' rounds (bench.stats.two_run_ratio:
the Hodges-Lehmann ratio with its Mann-Whitney interval, robust to the rounds a neighbour slowed).
Three outcomes:
- regression: the interval excludes 1.00 on the bad side AND the ratio is beyond the threshold;
- pass: the interval's bad end stays within the threshold (any change is smaller than it);
- undecided: neither (too few rounds, or too noisy to tell): a note, or a failure with
  --fail-on-undecided. A regression of an absolute figure is undecided too when other processes
  used BUSIER_BY_CORES more of the CPUs during NEW's trials than during BASE's: a shared machine's
  neighbour then explains the change as well as the code does. (Measured here with tools.gate_check:
  the same /cpu work ran 1.6x slower in the trials of a run that shared the machine with a test
  suite.) A layer's overhead is not downgraded: its rounds pair the layer with the baseline; nor is a
  figure read off the requests no neighbour interrupted (`spared_by_neighbours`, the app's p5 time:
  its A/A ratio stayed within 3% in 30 pairs here, some with a core of others' load in one run and
  none in its partner).
A cell of BASE missing from NEW, or without the figure there, fails: the gate cannot vouch for what
it cannot see; a threshold no cell has a figure for fails too (--allow-empty accepts it).
Parsing thresholds imports nothing heavy (scenario files use it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bench.errors import LayerbenchError
from bench.figures import METRICS, change_text, metric

BUSIER_BY_CORES = 0.5  # NEW's trials saw this many more cores of other processes than BASE's: not comparable
_THRESHOLD = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*%\s*$")
OVERHEAD = "overhead."
CALIBRATED = "calibrated."


@dataclass(frozen=True)
class Threshold:
    """How far a figure may move in its bad direction: -5.0 = a 5% drop. `overhead`: the figure is a
    layer's ratio to the run's baseline, not the absolute one."""

    metric: str
    percent: float
    overhead: bool = False
    calibrated: bool = False

    @property
    def key(self) -> str:
        return (OVERHEAD if self.overhead else CALIBRATED if self.calibrated else "") + self.metric

    @property
    def limit(self) -> float:
        """The ratio NEW/BASE past which a change is beyond the threshold (0.95 for -5%)."""
        return 1 + self.percent / 100

    @property
    def text(self) -> str:
        return f"{self.percent:+g}%"

    def judge(self, ratio) -> Literal["regression", "pass", "undecided"]:
        """The outcome for a ratio NEW/BASE (an Estimate with an interval; see the module docstring)."""
        if ratio.n < 2 or not ratio.low <= ratio.median <= ratio.high:
            return "undecided"
        if self.percent < 0:  # a drop is bad
            if ratio.high < 1 and ratio.median < self.limit:
                return "regression"
            return "pass" if ratio.low >= self.limit else "undecided"
        if ratio.low > 1 and ratio.median > self.limit:
            return "regression"
        return "pass" if ratio.high <= self.limit else "undecided"


def _threshold(key: str, value: object) -> Threshold:
    key = str(key).strip()
    overhead, calibrated = key.startswith(OVERHEAD), key.startswith(CALIBRATED)
    name = key.removeprefix(OVERHEAD).removeprefix(CALIBRATED)
    if name not in METRICS:
        raise ValueError(f"unknown metric {key!r}; choose from: {', '.join(METRICS)} (or overhead.<metric>: a "
                         f"layer's ratio to the baseline; calibrated.<metric>: per unit of machine speed)")
    found = _THRESHOLD.match(str(value)) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{key}: the threshold is a percentage such as -10% or +20%, not {str(value)[:40]!r}")
    sign, size = found.group(1), float(found.group(2))
    meaning = metric(name)
    bad = "-" if meaning.higher_is_better else "+"
    if sign and sign != bad:
        word = "a drop" if bad == "-" else "a rise"
        raise ValueError(f"{key}: {meaning.direction}, so a regression is {word}: write {bad}{size:g}%, "
                         f"not {sign}{size:g}%")
    if size <= 0 or (bad == "-" and size >= 100):
        raise ValueError(f"{key}: the threshold must be above 0%" + (" and below 100%" if bad == "-" else ""))
    return Threshold(name, -size if bad == "-" else size, overhead, calibrated)


def parse_thresholds(spec: str | dict | None) -> tuple[Threshold, ...]:
    """`"throughput_rps:-10%,overhead.latency_p99_ms:+20%"` or a mapping of the same; ValueError naming
    the problem. A percentage without a sign takes its metric's bad direction."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        pairs = []
        for part in (piece.strip() for piece in spec.split(",")):
            if part:
                key, colon, value = part.partition(":")
                if not colon:
                    raise ValueError(f"{part[:40]!r}: write metric:threshold, e.g. throughput_rps:-10%")
                pairs.append((key, value))
    elif isinstance(spec, dict):
        pairs = list(spec.items())
    else:
        raise ValueError("the gate is a mapping of metric: threshold, e.g. {throughput_rps: -10%}")
    if not pairs:
        raise ValueError("no threshold given; e.g. throughput_rps:-10%,latency_p99_ms:+20%")
    keys = [str(key).strip() for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a metric is named twice: {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}")
    return tuple(_threshold(key, value) for key, value in pairs)


def thresholds_for(comparison, fail_on: str | None) -> tuple[Threshold, ...]:
    """--fail-on when given (`comparison` is not read then: the flag is checked before any run is
    loaded), else the gate the newest run's scenario declares (none: no gate)."""
    declared = None if fail_on is not None else next(
        (run.info.scenario.gate for run in reversed(comparison.runs) if run.info.scenario.gate), None)
    try:
        return parse_thresholds(fail_on if fail_on is not None else declared)
    except ValueError as error:
        raise LayerbenchError(f"{'--fail-on' if fail_on is not None else 'the scenario gate'}: {error}") from None


def describe(thresholds: tuple[Threshold, ...]) -> str:
    return ",".join(f"{threshold.key}:{threshold.text}" for threshold in thresholds)


@dataclass(frozen=True)
class Finding:
    """One line of the gate's verdict: a regression, a cell it could not see (missing), or one it could
    not decide (undecided: fails only with --fail-on-undecided; unjudged: a note)."""

    kind: Literal["regression", "missing", "undecided", "unjudged"]
    subject: str
    text: str
    fails: bool = True


@dataclass(frozen=True)
class GateResult:
    thresholds: tuple[Threshold, ...]
    checked: int
    findings: tuple[Finding, ...]

    @property
    def failures(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fails]

    @property
    def undecided(self) -> int:
        return sum(1 for finding in self.findings if finding.kind == "undecided")

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        rules = describe(self.thresholds)
        open_checks = f", {self.undecided} undecided" if self.undecided else ""
        if self.passed:
            return f"gate passed: {self.checked} checks against {rules}{open_checks}; no significant change beyond " \
                   f"a threshold"
        return f"gate failed: {len(self.failures)} problem(s) in {self.checked} checks against {rules}{open_checks}"


def _figures(run, cell, threshold: Threshold) -> list[float]:
    """What the gate compares for a cell of a run: one value per round, the absolute figure, (overhead)
    the cell's paired ratio to the baseline in that round, or (calibrated) the figure per unit of the
    machine speed measured beside the trial."""
    if threshold.overhead:
        return run.round_ratios(cell, threshold.metric)
    if threshold.calibrated:
        return list(cell.calibrated_rounds(threshold.metric).values())
    return list(cell.rounds(threshold.metric).values())


def change(base_run, new_run, key: tuple, threshold: Threshold):
    """NEW/BASE for one cell (setup, variant, workload, app) as the gate sees it: an Estimate."""
    from bench import stats

    return stats.two_run_ratio(_figures(new_run, new_run.cell(*key), threshold),
                               _figures(base_run, base_run.cell(*key), threshold))


def _judge(subject: str, threshold: Threshold, new: list[float], base: list[float], run_id: str,
           fail_on_undecided: bool, busier_by_cores: float = 0.0) -> Finding | None:
    """The finding for one cell and threshold, or None when it passes. `busier_by_cores`: how many
    more cores other processes used during NEW's trials than during BASE's (median over each)."""
    from bench import stats  # numpy: only once a gate is applied

    what = _what(threshold).removeprefix("an ").removeprefix("a ")
    ratio = stats.two_run_ratio(new, base)
    outcome = threshold.judge(ratio)
    figures = (f"{what} {change_text(ratio.median)} [{change_text(ratio.low)}..{change_text(ratio.high)}] in {run_id} "
               f"over {len(base)} and {len(new)} rounds")
    if outcome == "pass":
        return None
    excused = threshold.overhead or metric(threshold.metric).spared_by_neighbours
    if outcome == "regression" and not excused and busier_by_cores >= BUSIER_BY_CORES:
        return Finding("undecided", subject, f"{subject}: {figures}: undecided against {threshold.text} (other "
                                             f"processes used {busier_by_cores:.1f} more cores during its trials than "
                                             f"during the baseline's; measure both on a quiet machine, e.g. "
                                             f"--wait-quiet)", fails=fail_on_undecided)
    if outcome == "regression":
        return Finding("regression", subject, f"{subject}: {figures}: a significant change beyond the "
                                              f"{threshold.text} threshold")
    why = "1 round gives no interval" if min(len(new), len(base)) < 2 else "too noisy to tell"
    return Finding("undecided", subject, f"{subject}: {figures}: undecided against {threshold.text} ({why}; run more "
                                         f"rounds)", fails=fail_on_undecided)


def _busier_by_cores(new_cell, base_cell) -> float:
    """How many more cores other processes used during NEW's trials of a cell than BASE's (0 when
    either run did not measure it)."""
    new, base = new_cell.typical_foreign_cpu_cores, base_cell.typical_foreign_cpu_cores
    return new - base if new is not None and base is not None else 0.0


def check(comparison, thresholds: tuple[Threshold, ...], allow_empty: bool = False,
          fail_on_undecided: bool = False) -> GateResult:
    """Judge every cell of the first run that has a gated figure against each later run. A threshold
    that made no check fails (bench.outcome: no check made is not a pass) unless allow_empty."""
    base_run, later = comparison.runs[0], comparison.runs[1:]
    findings, checked = [], 0
    gated_cells = dict.fromkeys((threshold.key for threshold in thresholds), 0)  # cells of BASE with the figure
    for cell in base_run.cells:
        gated = [(threshold, base) for threshold in thresholds if (base := _figures(base_run, cell, threshold))]
        for threshold, _ in gated:
            gated_cells[threshold.key] += 1
        for run in later:
            other = run.cell(*cell.key)
            if gated and other is None:
                findings.append(Finding("missing", cell.subject, f"{cell.subject}: missing from {run.run_id} (it is in "
                                        f"{base_run.run_id}); the gate cannot check it"))
                continue
            for threshold, base in gated:
                new = _figures(run, other, threshold)
                if not new:
                    findings.append(Finding("missing", cell.subject, f"{cell.subject}: no "
                                            f"{_what(threshold).removeprefix('a ')} figure in {run.run_id} (its "
                                            f"trials failed or did not measure it); the gate cannot check it"))
                    continue
                checked += 1
                finding = _judge(cell.subject, threshold, new, base, run.run_id, fail_on_undecided,
                                 _busier_by_cores(other, cell))
                if finding is not None:
                    findings.append(finding)
    for threshold in (t for t in thresholds if not gated_cells[t.key]):
        findings.append(_unchecked(threshold, base_run.run_id, allow_empty))
    return GateResult(thresholds, checked, tuple(findings))


def _what(threshold: Threshold) -> str:
    prefix = "an overhead (ratio to the baseline) in " if threshold.overhead else \
        "a calibrated (per machine speed) " if threshold.calibrated else "a "
    return prefix + metric(threshold.metric).label


def _unchecked(threshold: Threshold, base_run_id: str, allow_empty: bool) -> Finding:
    """A threshold the gate can make no check against: no cell of BASE has its figure (every trial
    failed, the metric is not measured there, e.g. PSS where it cannot be read, or no layer beside the
    baseline for an overhead)."""
    key = threshold.key
    beside = ", or there is no layer beside the baseline" if threshold.overhead else ""
    text = (f"{key}: no check made: no cell of {base_run_id} has {_what(threshold)} figure to compare "
            f"(its trials failed or did not measure it{beside})")
    if allow_empty:
        return Finding("unjudged", key, f"{text}; accepted by --allow-empty", fails=False)
    return Finding("missing", key, f"{text}; the gate cannot pass on nothing (--allow-empty accepts it)")
