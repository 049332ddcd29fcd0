"""A worked example of an output (docs/extending.md): an export format, tab-separated values, one
row per cell. Like every module of bench/outputs/ it renders the rows bench.outputs.rows builds
from the model, each figure already formatted by its metric, and never reads the files of a run."""

from __future__ import annotations

from bench.figures import HEADLINE_METRICS
from bench.outputs.rows import headline_rows
from bench.vocabulary import printable


def _field(value: object) -> str:
    return printable(" ".join(str(value).split()))  # no tab, newline or control character from a name


def run_text(run) -> str:
    """A stored run: one row per cell, each headline figure as every table shows it, `median [low–high]`
    (the unit is in the column name)."""
    lines = ["\t".join(["label", "workload", *HEADLINE_METRICS])]
    for row in headline_rows(run, HEADLINE_METRICS):
        lines.append("\t".join([_field(row.label), _field(row.workload), *row.figures]))
    return "\n".join(lines) + "\n"


def comparison_text(comparison) -> str:
    """A comparison: each run's table, one after the other."""
    return "\n".join(run_text(run) for run in comparison.runs)
