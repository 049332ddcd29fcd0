"""Exports of a run or a comparison for write-ups and other tools, one module per format (as
hyperfine's export/): markdown (a table to paste into a README or a pull request), csv (one row per
cell, one column per figure, the unit in each header) and json (the stable contracts).

Every format reads the model (bench.model.Run, bench.compare.Comparison) and the vocabulary only.
"""

from __future__ import annotations

from bench.errors import LayerbenchError
from bench.outputs.export import csv, json, markdown

FORMATS = {"markdown": markdown, "csv": csv, "json": json}


def _module(format_name: str):
    try:
        return FORMATS[format_name]
    except KeyError:
        raise LayerbenchError(f"--format must be one of {', '.join(FORMATS)}, not {format_name!r}") from None


def check_format(format_name: str) -> None:
    """LayerbenchError unless `format_name` is the terminal's table or one of FORMATS."""
    if format_name != "table" and format_name not in FORMATS:
        raise LayerbenchError(f"--format must be table, {', '.join(FORMATS)}; not {format_name!r}")


def export_run(run, format_name: str) -> str:
    """A stored run (bench.model.Run) as text in one of FORMATS."""
    return _module(format_name).run_text(run)


def export_comparison(comparison, format_name: str) -> str:
    """A comparison of runs (bench.compare.Comparison) as text in one of FORMATS."""
    return _module(format_name).comparison_text(comparison)
