"""Rows across runs: a comparison (bench.compare) and a fleet's hosts side by side."""

from __future__ import annotations

from dataclasses import dataclass

from bench.figures import HEADLINE_METRICS, metric
from bench.outputs.rows.cells import headline_figure
from bench.vocabulary import fmt, fmt_interval


@dataclass(frozen=True)
class CompareEntry:
    """One run's figure in a comparison row: its median and, after the first run, its ratio to the first."""

    median: str
    ratio: str  # 1.02 [0.98–1.05]; "" for the first run
    state: str  # worse, better, same, undecided; "" for the first run
    verdict: str


@dataclass(frozen=True)
class CompareRow:
    """One metric of one cell across the compared runs."""

    label: str
    workload: str
    metric_key: str
    metric: str  # the metric's title
    metric_label: str
    changed: bool  # a later run differs measurably from the first
    runs: tuple[CompareEntry, ...]


def compare_rows(comparison) -> list[CompareRow]:
    """The rows of a bench.compare.Comparison, every figure formatted by its metric."""
    rows = []
    for row in comparison.rows:
        meaning = metric(row.metric)
        entries = tuple(CompareEntry(fmt(entry.median, meaning.digits), fmt_interval(entry.ratio, 2) if entry.ratio else "",
                                     entry.state or "", entry.verdict or "") for entry in row.entries)
        rows.append(CompareRow(row.label, row.workload, row.metric, meaning.title, meaning.label, row.changed, entries))
    return rows


@dataclass(frozen=True)
class FleetRow:
    """One cell and headline metric across a fleet's hosts: each host's median [interval] and, after
    the first host, its ratio to the first with its verdict."""

    label: str
    workload: str
    metric: str  # the metric's title
    changed: bool
    values: tuple[CompareEntry, ...]  # one per host that came home, in the fleet's order


def fleet_rows(fleet) -> list[FleetRow]:
    """A bench.fleet.model.Fleet side by side; one host alone: its own figures, nothing to compare."""
    hosts = list(fleet.runs)
    if fleet.comparison is not None:
        rows = []
        for row in fleet.comparison.rows:
            if row.metric not in HEADLINE_METRICS:
                continue
            values = []
            for host, entry in zip(hosts, row.entries):
                cell = fleet.runs[host].cell(row.setup, row.variant, row.workload)
                shown = headline_figure(cell, row.metric) if cell else fmt(entry.median, metric(row.metric).digits)
                values.append(CompareEntry(shown, fmt_interval(entry.ratio, 2) if entry.ratio else "", entry.state or "",
                                           entry.verdict or ""))
            rows.append(FleetRow(row.label, row.workload, metric(row.metric).title, row.changed, tuple(values)))
        return rows
    return [FleetRow(cell.label, cell.workload, metric(key).title, False,
                     (CompareEntry(headline_figure(cell, key), "", "", ""),))
            for run in fleet.runs.values() for cell in run.cells for key in HEADLINE_METRICS
            if cell.estimate(key) is not None]
