"""`bench report --open`: the browser only where there is a display, the path otherwise."""

from __future__ import annotations

import webbrowser

import pytest
from typer.testing import CliRunner

import bench.outputs.report
from bench.cli import app
from tests.unit.test_plots import copy_run

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_charts(monkeypatch):
    """What --open does with the page is tested here; drawing its charts (~4 s) is tested elsewhere."""
    monkeypatch.setattr(bench.outputs.report, "render_run", lambda run, folder: {})


def test_without_a_display_it_prints_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    outcome = runner.invoke(app, ["report", str(copy_run(tmp_path)), "--open"])
    assert outcome.exit_code == 0, outcome.output
    assert opened == [] and "no display to open a browser on: open " in outcome.output
    assert str((tmp_path / "run" / "report.html").resolve()) in outcome.output.replace("\n", "")


def test_with_a_display_it_opens_the_report(tmp_path, monkeypatch):
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    outcome = runner.invoke(app, ["report", str(copy_run(tmp_path)), "--open"])
    assert outcome.exit_code == 0, outcome.output
    assert opened == [(tmp_path / "run" / "report.html").resolve().as_uri()]
    assert "no display" not in outcome.output
