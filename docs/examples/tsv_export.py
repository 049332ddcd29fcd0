"""A worked example of an output (docs/extending.md): an export format, tab-separated values, one
row per cell. Like every module of bench/outputs/ it reads the model (bench.model.Run) and the
metric registry (bench.figures) only, never the files of a run."""

from __future__ import annotations

from bench.figures import HEADLINE_METRICS
from bench.vocabulary import printable


def _field(value: object) -> str:
    return printable(" ".join(str(value).split()))  # no tab, newline or control character from a name


def run_text(run) -> str:
    """A stored run: one row per cell, each headline figure's median (the unit is in the column name)."""
    lines = ["\t".join(["label", "workload", *HEADLINE_METRICS])]
    for cell in run.cells:
        figures = [cell.estimate(key) for key in HEADLINE_METRICS]
        lines.append("\t".join([_field(cell.label), _field(cell.workload),
                                *("" if figure is None else f"{figure.median:.6g}" for figure in figures)]))
    return "\n".join(lines) + "\n"


def comparison_text(comparison) -> str:
    """A comparison: each run's table, one after the other."""
    return "\n".join(run_text(run) for run in comparison.runs)
