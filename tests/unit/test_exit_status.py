"""How `bench run` exits when it could not do all it was asked: a setup named with --setups that
cannot run here is skipped with a distinct status (4); one only listed in a scenario file is not."""

from __future__ import annotations

from typer.testing import CliRunner

from bench.cli import app
from bench.errors import ExitStatus
from tests.fake_setup import InProcessSetup, registered

runner = CliRunner()
FAST = ["--workloads", "hello", "--duration", "0.3", "--warmup", "0", "--repeat", "1", "--connections", "1",
        "--no-report"]


def test_a_setup_named_with_setups_and_skipped_exits_with_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    with registered():
        outcome = runner.invoke(app, ["run", "--setups", "bare,inproc", *FAST, "--out", str(tmp_path)])
    assert outcome.exit_code == ExitStatus.SKIPPED == 4, outcome.output
    assert "skipping inproc: not on this machine (test)" in outcome.output


def test_a_setup_skipped_from_a_scenario_file_exits_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nsetups: [bare, inproc]\nworkloads: [hello]\n")
    with registered():
        outcome = runner.invoke(app, ["run", str(scenario), *FAST, "--out", str(tmp_path / "r")])
    assert outcome.exit_code == 0, outcome.output


def test_every_setup_measured_exits_zero(tmp_path):
    with registered():
        outcome = runner.invoke(app, ["run", "--setups", "bare,inproc", *FAST, "--out", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
