"""CSV: one row per cell, one column per figure, the unit in every header (the metric keys carry it:
`throughput_rps`, `latency_p99_ms`, `cpu_us_per_request`, `memory_rss_mb`, `startup_s`).

The columns are stable: every registered metric, in bench.vocabulary.METRICS order, whether or not
the run has it (an empty field when not). A run: `<metric>_median`, `_low`, `_high` (95% interval
over rounds) and `<metric>_ratio`, `_ratio_low`, `_ratio_high`, `_rounds` (paired over that many rounds)
and `_verdict` (worse, better, same or undecided) against the baseline's cell of the same workload
(start-up ratios, pooled over every start of a layer, on a row of their own with workload
`start-up`). A comparison: per metric and run k (the k-th run given, run1 the
reference), `<metric>_run<k>_median` and, from run 2 on, its ratio to run 1 with its interval.
"""

from __future__ import annotations

import csv
import io
import re

from bench.model import STARTUP_WORKLOAD, Run
from bench.figures import METRICS
from bench.vocabulary import finite, label, printable

RUN_COLUMNS = ("run_id", "setup", "variant", "app", "label", "workload", "kind", "repeats", "failed")
RATIO_PARTS = ("ratio", "ratio_low", "ratio_high", "rounds", "verdict")


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection"), the
# full-width forms included; leading blanks do not stop every spreadsheet from doing so. Tab and
# carriage return, on OWASP's list too, never start a cell here: printable() shows them as \t, \r.
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[+-]?\d+)?")


def cell(value) -> str:
    """The one escaping path of this format, for every field: control characters (newline, ESC) shown
    escaped (\\n, \\x1b), and a text a spreadsheet would take for a formula made plain text with a
    leading ' (OWASP); a plain number stays a number."""
    text = printable("" if value is None else value)
    if _NUMBER.fullmatch(text):
        return text
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def number(value) -> str:
    """A figure for a spreadsheet: plain digits, no separators; empty when missing."""
    return repr(round(float(value), 6)) if finite(value) else ""


def run_header() -> list[str]:
    figures = [f"{key}_{part}" for key in METRICS for part in ("median", "low", "high")]
    ratios = [f"{key}_{part}" for key in METRICS for part in RATIO_PARTS]
    return [*RUN_COLUMNS, *figures, *ratios, "notes"]


def _ratios(run: Run, key: tuple[str, str, str, str]) -> dict[str, str]:
    """The ratios of the cell (setup, variant, workload, app) to the same app's baseline."""
    found = {}
    for row in run.overhead:
        if (row.setup, row.variant, row.workload, row.app) == key:
            ratio = row.ratio
            found.update({f"{row.metric}_ratio": number(ratio.median), f"{row.metric}_ratio_low": number(ratio.low),
                          f"{row.metric}_ratio_high": number(ratio.high), f"{row.metric}_rounds": ratio.n,
                          f"{row.metric}_verdict": row.state})
    return found


def _write(header: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    out.write(",".join(header) + "\n")  # our own column names (metric keys): nothing to quote or neutralise
    # Every field quoted (OWASP): a spreadsheet set to another separator (;) cannot split a cell open
    # into a second cell that starts a formula.
    writer = csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerows({key: cell(value) for key, value in row.items()} for row in rows)
    return out.getvalue()


def run_text(run: Run) -> str:
    """Every cell of the run, then one row per layer for its pooled start-up ratio."""
    rows = []
    for cell in run.cells:
        row = {"run_id": run.run_id, "setup": cell.setup, "variant": cell.variant, "app": cell.app, "label": cell.label,
               "workload": cell.workload, "kind": cell.kind, "repeats": cell.repeats, "failed": cell.failed,
               "notes": "; ".join(caveat.flag for caveat in cell.caveats() if caveat.flag)}
        for key in METRICS:
            estimate = cell.estimate(key)
            if estimate is not None:
                row.update({f"{key}_median": number(estimate.median), f"{key}_low": number(estimate.low),
                            f"{key}_high": number(estimate.high)})
        rows.append({**row, **_ratios(run, cell.key)})
    pooled = dict.fromkeys((r.layer_key, r.app) for r in run.overhead if r.workload == STARTUP_WORKLOAD)
    for key, app in pooled:
        rows.append({"run_id": run.run_id, "setup": key.setup, "variant": key.variant, "app": app,
                     "label": label(*key), "workload": STARTUP_WORKLOAD, "kind": "startup",
                     **_ratios(run, (key.setup, key.variant, STARTUP_WORKLOAD, app))})
    return _write(run_header(), rows)


def comparison_header(runs: int) -> list[str]:
    columns = ["setup", "variant", "app", "label", "workload", "missing_from"]
    for key in METRICS:
        columns.append(f"{key}_run1_median")
        for index in range(2, runs + 1):
            columns += [f"{key}_run{index}_median", *(f"{key}_run{index}_{part}" for part in RATIO_PARTS)]
    return columns


def comparison_text(comparison) -> str:
    """One row per cell of any run (bench.compare.Comparison); run k is the k-th run compared."""
    runs = comparison.runs
    rows: dict[tuple, dict] = {}
    for row in comparison.rows:
        line = rows.setdefault((row.setup, row.variant, row.workload, row.app), {
            "setup": row.setup, "variant": row.variant, "app": row.app, "label": row.label, "workload": row.workload,
            "missing_from": " ".join(run.run_id for run in runs
                                     if run.cell(row.setup, row.variant, row.workload, row.app) is None)})
        for index, entry in enumerate(row.entries, start=1):
            prefix = f"{row.metric}_run{index}"
            line[f"{prefix}_median"] = number(entry.median)
            if index > 1 and entry.ratio is not None:
                line.update({f"{prefix}_ratio": number(entry.ratio.median),
                             f"{prefix}_ratio_low": number(entry.ratio.low),
                             f"{prefix}_ratio_high": number(entry.ratio.high), f"{prefix}_rounds": entry.ratio.n,
                             f"{prefix}_verdict": entry.state})
    return _write(comparison_header(len(runs)), list(rows.values()))
