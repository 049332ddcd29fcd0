"""Compare stored runs: the same cell (setup, variant, workload) across runs, as a ratio of each
run to the first with a bootstrap interval, and a warning whenever the runs are not comparable
(different machine, pinning or scenario).
"""

from __future__ import annotations

import math
import statistics
import zlib
from pathlib import Path

from bench import stats
from bench.machine import COMPARABLE_FIELDS
from bench.results import ResultsError, RunRecord, atomic_write, load_run
from bench.summary import metric_values  # one definition of "a metric's per-trial values"

COMPARE_FILE = "compare.html"
CHART_NAME = "compare"


def _seed(base: int, *parts: str) -> int:
    return (base + zlib.crc32("/".join(parts).encode())) % 2**32


def _scenario_shape(record: RunRecord) -> dict:
    """The scenario fields that change what is measured (not its name or description)."""
    scenario = record.scenario or {}
    keep = ("name", "description")
    return {key: value for key, value in scenario.items() if key not in keep}


def _warnings(records: list[RunRecord]) -> list[str]:
    first = records[0]
    found = []
    for other in records[1:]:
        for field in COMPARABLE_FIELDS:
            mine, theirs = first.machine.get(field), other.machine.get(field)
            if mine != theirs:
                found.append(f"machine differs: {field} is {mine!r} in {first.run_id} but {theirs!r} in "
                             f"{other.run_id}; differences may come from the machine, not the layers")
        if first.pinning != other.pinning:
            found.append(f"pinning differs: {first.pinning or 'none'} in {first.run_id} but "
                         f"{other.pinning or 'none'} in {other.run_id}")
        if _scenario_shape(first) != _scenario_shape(other):
            found.append(f"scenario differs: {first.scenario.get('name')!r} in {first.run_id} and "
                         f"{other.scenario.get('name')!r} in {other.run_id} do not measure the same way "
                         f"(workloads, durations, repeats or order)")
        for record in (first, other):
            if record.status != "complete":
                found.append(f"run {record.run_id} is {record.status}: some cells may be missing")
    return list(dict.fromkeys(found))


def _cells(record: RunRecord) -> dict[tuple[str, str, str], list]:
    cells: dict[tuple[str, str, str], list] = {}
    for trial in record.ok_trials():
        cells.setdefault((trial.setup, trial.variant, trial.workload), []).append(trial)
    return cells


def compare_runs(run_dirs: list[Path]) -> dict:
    """Match cells by (setup, variant, workload) across runs; per metric, each run's median and its
    ratio to the first run with a 95% interval. ResultsError when fewer than two runs load."""
    if len(run_dirs) < 2:
        raise ResultsError("compare needs at least two runs")
    records = [load_run(Path(run_dir)) for run_dir in run_dirs]
    per_run = [_cells(record) for record in records]
    keys = list(dict.fromkeys(key for cells in per_run for key in cells))
    keys.sort(key=lambda key: key[0] != "bare")  # bare first, the rest as they first appear
    rows = []
    for key in keys:
        base_values = metric_values(per_run[0].get(key, []))
        for metric in stats.METRIC_WORDS:
            entries = []
            for record, cells in zip(records, per_run):
                values = metric_values(cells.get(key, []))[metric]
                median = float(statistics.median(values)) if values else None
                entry = {"run_id": record.run_id, "repeats": len(values), "median": median, "ratio": None,
                         "verdict": None}
                if record is not records[0] and values and base_values[metric]:
                    ratio = stats.ratio_ci(values, base_values[metric], _seed(records[0].seed, *key, metric,
                                                                               record.run_id))
                    if math.isfinite(ratio.median):
                        entry["ratio"] = ratio.as_dict()
                        entry["verdict"] = stats.verdict(metric, ratio)
                entries.append(entry)
            if any(entry["median"] is not None for entry in entries):
                rows.append({"setup": key[0], "variant": key[1], "workload": key[2], "metric": metric,
                             "runs": entries})
    missing = [f"{key[0]} ({key[1]}) / {key[2]} is missing from {record.run_id}"
               for key in keys for record, cells in zip(records, per_run) if key not in cells]
    return {
        "runs": [{"run_id": r.run_id, "path": str(d), "scenario": r.scenario.get("name"), "status": r.status,
                  "created_at": r.created_at, "machine": {f: r.machine.get(f) for f in COMPARABLE_FIELDS},
                  "pinning": r.pinning} for r, d in zip(records, run_dirs)],
        "baseline_run": records[0].run_id,
        "confidence": stats.CONFIDENCE,
        "rows": rows,
        "warnings": _warnings(records) + missing,
    }


def comparison_table(comparison: dict):
    """A rich Table of a comparison (belongs with the other tables in render.py; here until it moves)."""
    from rich.table import Table

    from bench.report import fmt, interval

    runs = comparison["runs"]
    caption = "; ".join(f"run {index + 1} = {run['run_id']}" for index, run in enumerate(runs))
    table = Table(title="compared runs: median, and ratio to run 1 [95% interval]", caption=caption,
                  title_justify="left")
    for column in ("setup", "workload", "metric"):
        table.add_column(column)
    for index in range(len(runs)):
        table.add_column(f"run {index + 1}", justify="right")
    for row in comparison["rows"]:
        label = row["setup"] if row["variant"] == "default" else f"{row['setup']} ({row['variant']})"
        cells = [fmt(row["runs"][0]["median"])]
        for entry in row["runs"][1:]:
            cells.append(f"{fmt(entry['median'])} ×{interval(entry['ratio'], 2)}" if entry["ratio"]
                         else fmt(entry["median"]))
        table.add_row(label, row["workload"], row["metric"], *cells,
                      style="yellow" if any(e["verdict"] not in (None, "no measurable difference")
                                            for e in row["runs"][1:]) else None)
    return table


def write_compare_report(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write `out_dir`/compare.png|svg (ratios to the first run) and `out_dir`/compare.html; the page's path."""
    from bench.plots.compare import compare_chart
    from bench.report import embed_png, environment

    comparison = compare_runs(run_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = compare_chart(comparison, out_dir, CHART_NAME)
    html = environment().get_template("compare.html").render(
        comparison=comparison, chart=embed_png(chart[0]) if chart else None)
    path = out_dir / COMPARE_FILE
    atomic_write(path, html.encode("utf-8"))
    path.chmod(0o644)
    return path
