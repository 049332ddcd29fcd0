"""A worked example of an output (docs/extending.md), against main before issue 25's part A: an
export format, tab-separated values, one row per cell. It reads the model (bench.model.Run) and
the vocabulary only, never the files of a run. Part A moves the outputs into one package: re-check
this file once it lands."""

from __future__ import annotations

from bench.vocabulary import HEADLINE_METRICS, printable


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
