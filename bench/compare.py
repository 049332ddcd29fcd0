"""Compare stored runs: the same cell (setup, variant, workload, app) across runs, as a ratio of each
run to the first with a 95% interval and a three-state verdict, and a caveat whenever the runs are not
comparable (different machine, pinning or scenario, an unfinished run, a missing cell).

Two runs share no rounds, so the ratio is unpaired: the median of the pairwise ratios of one run's
rounds to the other's with a Mann-Whitney interval (Hodges-Lehmann; Welch's t on the logs where the
runs are too small for it: bench.stats.two_run_ratio); a round is one start's trials combined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench import stats
from bench.errors import ResultsError
from bench.machine import COMPARABLE_FIELDS
from bench.model import FIRST_APP, Cell, Run, median_of
from bench.figures import METRICS, state_of, verdict
from bench.vocabulary import Caveat, cell_label, label

@dataclass(frozen=True)
class Entry:
    """One run's figure for a row: its median and, after the first run, its ratio to the first."""

    run_id: str
    repeats: int  # rounds with the figure
    median: float | None
    ratio: stats.Estimate | None = None
    verdict: str | None = None
    state: str | None = None  # worse, better, same, undecided (None for the first run)


@dataclass(frozen=True)
class Row:
    """One metric of one cell across the runs."""

    setup: str
    variant: str
    workload: str
    metric: str
    entries: list[Entry]
    app: str = FIRST_APP
    show_app: bool = False  # the compared runs hold several apps

    @property
    def label(self) -> str:
        return label(self.setup, self.variant, self.app if self.show_app else None)

    @property
    def changed(self) -> bool:
        """True when some later run differs measurably from the first."""
        return any(entry.state in ("worse", "better") for entry in self.entries[1:])


@dataclass
class Comparison:
    runs: list[Run]
    rows: list[Row]
    caveats: list[Caveat]
    names: list[str] | None = None  # what to call each run (a fleet: its host); default the run ids

    @property
    def baseline_run(self) -> str:
        return self.runs[0].run_id

    @property
    def titles(self) -> list[str]:
        """Each run's name in tables and charts: its host in a fleet, else its run id."""
        return list(self.names) if self.names else [run.run_id for run in self.runs]

    def colour(self, setup: str) -> str | None:
        """A setup's hue, as the first run that describes it declared."""
        return next((layer.colour for run in self.runs for layer in run.layers if layer.setup == setup), None)

    def as_dict(self) -> dict:
        """Plain data for the page and for JSON."""
        return {
            "runs": [{"run_id": run.run_id, "name": name, "path": str(run.run_dir),
                      "scenario": run.info.scenario_name,
                      "status": run.info.stored_status, "created_at": run.info.created_at,
                      "machine": {field: run.info.machine_field(field) for field in COMPARABLE_FIELDS},
                      "pinning": run.info.pinning.stored() if run.info.pinning else {}} for run, name in zip(self.runs, self.titles)],
            "baseline_run": self.baseline_run,
            "confidence": stats.CONFIDENCE,
            "rows": [{"setup": row.setup, "variant": row.variant, "app": row.app, "workload": row.workload,
                      "label": row.label,
                      "metric": row.metric,
                      "runs": [{"run_id": e.run_id, "repeats": e.repeats, "median": e.median,
                                "ratio": e.ratio.as_dict() if e.ratio else None, "state": e.state,
                                "verdict": e.verdict}
                               for e in row.entries]} for row in self.rows],
            "warnings": [caveat.text for caveat in self.caveats],
        }


def _pinning(run: Run) -> str:
    return str(run.info.pinning.stored()) if run.info.pinning else "none"


def _scenario_shape(run: Run) -> dict:
    """The scenario fields that change what is measured (not its name, description or gate)."""
    return {key: value for key, value in run.info.scenario.stored().items()
            if key not in ("name", "description", "gate")}


def _caveats(runs: list[Run], names: list[str]) -> list[Caveat]:
    (first, first_name), found = (runs[0], names[0]), []
    for other, name in zip(runs[1:], names[1:]):
        for field in COMPARABLE_FIELDS:
            mine, theirs = first.info.machine_field(field), other.info.machine_field(field)
            if mine != theirs:
                found.append(Caveat("machine", field, f"machine differs: {field} is {mine!r} in {first_name} but "
                                    f"{theirs!r} in {name}; differences may come from the machine, not the "
                                    f"layers"))
        if first.info.pinning != other.info.pinning:
            found.append(Caveat("pinning", "", f"pinning differs: {_pinning(first)} in {first_name} "
                                f"but {_pinning(other)} in {name}"))
        if _scenario_shape(first) != _scenario_shape(other):
            found.append(Caveat("scenario", "", f"scenario differs: {first.info.scenario_name!r} in "
                                f"{first_name} and {other.info.scenario_name!r} in {name} do not "
                                f"measure the same way (workloads, durations, repeats or order)"))
        for run, run_name in ((first, first_name), (other, name)):
            if run.info.status != "complete":
                found.append(Caveat("incomplete", run.run_id, f"run {run_name} is {run.info.status}: "
                                    f"some cells may be missing"))
    return list(dict.fromkeys(found))


def _entries(runs: list[Run], key: tuple[str, str, str, str], metric: str) -> list[Entry]:
    base_cell = runs[0].cell(*key)
    base = list(base_cell.rounds(metric).values()) if base_cell else []
    min_effect = runs[0].min_effect
    entries = []
    for run in runs:
        cell: Cell | None = run.cell(*key)
        values = list(cell.rounds(metric).values()) if cell else []
        entry = Entry(run.run_id, len(values), median_of(values))
        if run is not runs[0] and values and base:
            ratio = stats.two_run_ratio(values, base)
            if math.isfinite(ratio.median):
                state = state_of(metric, stats.decide(ratio, min_effect))
                entry = Entry(run.run_id, len(values), entry.median, ratio, verdict(metric, ratio, state, min_effect),
                              state)
        entries.append(entry)
    return entries


def compare(runs: list[Run], names: list[str] | None = None) -> Comparison:
    """Match cells by (setup, variant, workload, app) across runs; per metric, each run's median and its
    ratio to the first run with a 95% interval. `names` calls the runs something other than their
    ids (a fleet's hosts). ResultsError when fewer than two runs are given."""
    if len(runs) < 2:
        raise ResultsError("compare needs at least two runs")
    titles = list(names) if names else [run.run_id for run in runs]
    baseline_first = sorted((cell for run in runs for cell in run.cells),
                            key=lambda cell: cell.setup != runs[0].baseline)
    keys = list(dict.fromkeys(cell.key for cell in baseline_first))
    several = len({key[3] for key in keys}) > 1
    rows = []
    for key in keys:
        for metric in METRICS:
            entries = _entries(runs, key, metric)
            if any(entry.median is not None for entry in entries):
                rows.append(Row(*key[:3], metric, entries, key[3], several))
    subject = {key: cell_label(*key[:3], key[3] if several else None) for key in keys}
    missing = [Caveat("missing", subject[key], f"{subject[key]} is missing from {name}")
               for key in keys for run, name in zip(runs, titles) if run.cell(*key) is None]
    return Comparison(runs, rows, _caveats(runs, titles) + missing, names=list(names) if names else None)


def compare_runs(run_dirs: list[Path], names: list[str] | None = None) -> Comparison:
    """Load the run folders and compare them (ratios to the first)."""
    if len(run_dirs) < 2:
        raise ResultsError("compare needs at least two runs")
    return compare([Run.load(Path(run_dir)) for run_dir in run_dirs], names)
