"""Every shipped scenario, run through the real runner with stand-in setups and apps (tests/stand_ins.py)
and shown by every output that needs no chart: the terminal table, the report's page, markdown, csv
and json, and compare against itself. A scenario that breaks an output fails here, in seconds, not
at the end of a real run. tests/integration/test_shipped_scenarios.py draws their charts too.

`bench show` and `bench compare` run once per scenario through the command line (json); the other
formats are the same commands' export functions on the run loaded once, as loading a run (and
checking every file of it) costs more than writing any of its outputs."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from bench.compare import compare_runs
from bench.model import Run
from bench.outputs.export import export_comparison, export_run
from bench.outputs.report import render_report
from bench.outputs.terminal import print_run
from bench.scenario import load_scenario, shipped
from tests.stand_ins import bench_ok, run_shipped


def _table(run: Run) -> str:
    """What `bench show` prints (and `bench run` at its end), on a wide terminal: nothing cut."""
    console = Console(file=io.StringIO(), width=200, highlight=False)
    print_run(console, run)
    return console.file.getvalue()


@pytest.mark.parametrize("name", sorted(shipped()))
def test_a_shipped_scenario_runs_and_every_output_renders(name, tmp_path, monkeypatch):
    run_dir = run_shipped(name, tmp_path, monkeypatch, report=False)
    summary = json.loads(bench_ok("show", str(run_dir), "--format", "json"))
    labels = {row["label"] for row in summary["results"]}
    assert len(labels) >= len(load_scenario(name).setups)  # every setup (of every app) measured and named
    layer_names = {label.split(" · ")[-1] for label in labels}

    run = Run.load(run_dir)
    texts = {"report": render_report(run, charts={}),  # the page of `bench report`, without drawing charts
             "table": _table(run), "markdown": export_run(run, "markdown"), "csv": export_run(run, "csv")}
    for output, text in texts.items():
        assert [name for name in layer_names if name not in text] == [], output
    assert json.loads(bench_ok("compare", str(run_dir), str(run_dir), "--format", "json"))
    compared = compare_runs([run_dir, run_dir])
    for form in ("markdown", "csv"):
        assert export_comparison(compared, form).strip()


def test_every_shipped_scenario_is_covered():
    """The parametrisation reads the scenarios folder: a new file is tested without a new line here."""
    assert len(shipped()) >= 13
