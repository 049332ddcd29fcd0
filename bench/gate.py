"""A regression gate for CI (as pyperf compare_to, asv and Kata's checkmetrics do): fail only when a
change is real and larger than its threshold.

A threshold is a metric and a signed percentage, `throughput_rps:-10%` or `latency_p99_ms:+20%`:
the sign is the bad direction (a metric where higher is better regresses by dropping). A cell fails
when the whole 95% interval of its ratio NEW/BASE lies beyond the threshold in that direction, so a
change within noise never fails. A cell of BASE missing from NEW, or without the figure there,
fails too, with its own message: the gate cannot vouch for what it cannot see. Reads a
bench.compare.Comparison; parsing thresholds imports nothing heavy (scenario files use it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bench.errors import LayerbenchError
from bench.vocabulary import METRICS, metric

_THRESHOLD = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class Threshold:
    """How far a metric may move in its bad direction before the gate fails: -10.0 = a 10% drop."""

    metric: str
    percent: float

    @property
    def limit(self) -> float:
        """The ratio NEW/BASE the whole interval must be beyond to fail (0.9 for -10%)."""
        return 1 + self.percent / 100

    @property
    def text(self) -> str:
        return f"{self.percent:+g}%"

    def beyond(self, ratio) -> bool:
        """True when the ratio's whole interval (an Estimate) is past the limit, in the bad direction."""
        return ratio.high < self.limit if self.percent < 0 else ratio.low > self.limit


def _threshold(key: str, value: object) -> Threshold:
    key = str(key).strip()
    if key not in METRICS:
        raise ValueError(f"unknown metric {key!r}; choose from: {', '.join(METRICS)}")
    found = _THRESHOLD.match(str(value)) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{key}: the threshold is a percentage such as -10% or +20%, not {str(value)[:40]!r}")
    sign, size = found.group(1), float(found.group(2))
    meaning = metric(key)
    bad = "-" if meaning.higher_is_better else "+"
    if sign and sign != bad:
        word = "a drop" if bad == "-" else "a rise"
        raise ValueError(f"{key}: {meaning.direction}, so a regression is {word}: write {bad}{size:g}%, "
                         f"not {sign}{size:g}%")
    if size <= 0 or (bad == "-" and size >= 100):
        raise ValueError(f"{key}: the threshold must be above 0%" + (" and below 100%" if bad == "-" else ""))
    return Threshold(key, -size if bad == "-" else size)


def parse_thresholds(spec: str | dict | None) -> tuple[Threshold, ...]:
    """`"throughput_rps:-10%,latency_p99_ms:+20%"` or a mapping of the same; ValueError naming the problem.
    A percentage without a sign takes its metric's bad direction."""
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
        (run.record.scenario.get("gate") for run in reversed(comparison.runs) if run.record.scenario.get("gate")), None)
    try:
        return parse_thresholds(fail_on if fail_on is not None else declared)
    except ValueError as error:
        raise LayerbenchError(f"{'--fail-on' if fail_on is not None else 'the scenario gate'}: {error}") from None


def describe(thresholds: tuple[Threshold, ...]) -> str:
    return ",".join(f"{threshold.metric}:{threshold.text}" for threshold in thresholds)


@dataclass(frozen=True)
class Finding:
    """One line of the gate's verdict: a cell that failed (regression, missing) or could not be judged."""

    kind: Literal["regression", "missing", "unjudged"]
    subject: str
    text: str

    @property
    def fails(self) -> bool:
        return self.kind != "unjudged"


@dataclass(frozen=True)
class GateResult:
    thresholds: tuple[Threshold, ...]
    checked: int
    findings: tuple[Finding, ...]

    @property
    def failures(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fails]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        rules = describe(self.thresholds)
        if self.passed:
            return f"gate passed: {self.checked} checks against {rules}; no change beyond a threshold"
        return f"gate failed: {len(self.failures)} problem(s) in {self.checked} checks against {rules}"


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _judge(subject: str, threshold: Threshold, entry, run_id: str, repeats: tuple[int, int]) -> Finding | None:
    meaning = metric(threshold.metric)
    ratio = entry.ratio
    if ratio is None:
        return Finding("missing", subject, f"{subject}: no {meaning.label} figure in {run_id} (its trials failed "
                                           f"or did not measure it); the gate cannot check it")
    if min(repeats) < 2:
        return Finding("unjudged", subject, f"{subject}: {meaning.label} not judged: 1 repeat gives no interval "
                                            f"(run at least 2 repeats)")
    if not threshold.beyond(ratio):
        return None
    return Finding("regression", subject, f"{subject}: {meaning.label} {_percent(ratio.median)} "
                                          f"[{_percent(ratio.low)}..{_percent(ratio.high)}] in {run_id}, beyond "
                                          f"the {threshold.text} threshold (ratio {ratio.median:.3f} "
                                          f"[{ratio.low:.3f}–{ratio.high:.3f}])")


def check(comparison, thresholds: tuple[Threshold, ...], allow_empty: bool = False) -> GateResult:
    """Judge every cell of the first run that has a gated figure against each later run. A threshold
    that made no check fails (bench.outcome: no check made is not a pass) unless allow_empty."""
    base_run, later = comparison.runs[0], comparison.runs[1:]
    rows = {(row.setup, row.variant, row.workload, row.app, row.metric): row for row in comparison.rows}
    findings, checked = [], 0
    gated_cells = dict.fromkeys((threshold.metric for threshold in thresholds), 0)  # cells of BASE with the figure
    for cell in base_run.cells:
        gated = [threshold for threshold in thresholds if cell.values(threshold.metric)]
        for threshold in gated:
            gated_cells[threshold.metric] += 1
        for index, run in enumerate(later, start=1):
            other = run.cell(*cell.key)
            if gated and other is None:
                findings.append(Finding("missing", cell.subject, f"{cell.subject}: missing from {run.run_id} (it is in "
                                        f"{base_run.run_id}); the gate cannot check it"))
                continue
            for threshold in gated:
                checked += 1
                entry = rows[(*cell.key, threshold.metric)].entries[index]
                repeats = (len(cell.values(threshold.metric)), len(other.values(threshold.metric)))
                finding = _judge(cell.subject, threshold, entry, run.run_id, repeats)
                if finding is not None:
                    findings.append(finding)
    for key in (key for key, count in gated_cells.items() if not count):
        findings.append(_unchecked(key, base_run.run_id, allow_empty))
    return GateResult(thresholds, checked, tuple(findings))


def _unchecked(key: str, base_run_id: str, allow_empty: bool) -> Finding:
    """A threshold the gate can make no check against: no cell of BASE has its figure (every trial
    failed, or the metric is not measured there, e.g. PSS where it cannot be read)."""
    text = (f"{key}: no check made: no cell of {base_run_id} has a {metric(key).label} figure to compare "
            f"(its trials failed or did not measure it)")
    if allow_empty:
        return Finding("unjudged", key, f"{text}; accepted by --allow-empty")
    return Finding("missing", key, f"{text}; the gate cannot pass on nothing (--allow-empty accepts it)")
