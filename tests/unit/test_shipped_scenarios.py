"""Every shipped scenario, run through the real runner with stand-in setups and apps (tests/stand_ins.py)
and shown by every output that needs no chart: the terminal table, the report's page, markdown, csv
and json, and compare against itself. A scenario that breaks an output fails here, in seconds, not
at the end of a real run. tests/integration/test_shipped_scenarios.py draws their charts too."""

from __future__ import annotations

import json

import pytest

from bench.model import Run
from bench.outputs.report import render_report
from bench.scenario import load_scenario, shipped
from tests.stand_ins import bench_ok, run_shipped


@pytest.mark.parametrize("name", sorted(shipped()))
def test_a_shipped_scenario_runs_and_every_output_renders(name, tmp_path, monkeypatch):
    run_dir = run_shipped(name, tmp_path, monkeypatch, report=False)
    summary = json.loads(bench_ok("show", str(run_dir), "--format", "json"))
    labels = {row["label"] for row in summary["results"]}
    assert len(labels) >= len(load_scenario(name).setups)  # every setup (of every app) measured and named
    layer_names = {label.split(" · ")[-1] for label in labels}

    html = render_report(Run.load(run_dir), charts={})  # the page of `bench report`, without drawing charts
    texts = {"report": html, "table": bench_ok("show", str(run_dir)),
             "markdown": bench_ok("show", str(run_dir), "--format", "markdown"),
             "csv": bench_ok("show", str(run_dir), "--format", "csv")}
    for output, text in texts.items():
        assert [name for name in layer_names if name not in text] == [], output
    for form in ("markdown", "csv", "json"):
        assert bench_ok("compare", str(run_dir), str(run_dir), "--format", form).strip()


def test_every_shipped_scenario_is_covered():
    """The parametrisation reads the scenarios folder: a new file is tested without a new line here."""
    assert len(shipped()) >= 13
