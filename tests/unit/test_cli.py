"""The command line: exit codes and messages for the things a user gets wrong."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bench import results
from bench.cli import app
from tests.unit.test_results import make_record

runner = CliRunner()


def test_help_lists_the_commands():
    output = runner.invoke(app, ["--help"]).output
    for command in ("run", "show", "list", "doctor", "clean", "scenarios"):
        assert command in output


def test_the_app_flags_help_lists_the_registered_apps_the_default_first(monkeypatch):
    from bench.apps import registry
    from bench.apps.python import PythonApp
    from bench.cli.run import apps_help

    output = " ".join(runner.invoke(app, ["run", "--help"], terminal_width=200).output.split())
    default = registry.default_kind()
    assert f"(comma-separated): {default} (default), " in output
    assert all(kind in output for kind in registry.named_kinds())

    class PluginApp(PythonApp):
        kind = "plugin-app"
        default = False

    monkeypatch.setitem(registry._REGISTRY, PluginApp.kind, PluginApp)
    assert "plugin-app" in apps_help()


def test_show_json_contract(tmp_path):
    results.save_run(tmp_path / "r1", make_record())
    outcome = runner.invoke(app, ["show", "r1", "--format", "json", "--results", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    summary = json.loads(outcome.output)
    assert summary["run_id"] == "r1"
    row = summary["results"][0]
    for key in ("setup", "variant", "workload", "throughput_rps", "latency_ms", "cpu_us_per_request", "memory_mb",
                "startup_s"):
        assert key in row
    assert summary["overhead"] == []


def test_show_unknown_run_and_bad_format_exit_nonzero(tmp_path):
    outcome = runner.invoke(app, ["show", "nope", "--results", str(tmp_path)])
    assert outcome.exit_code == 1 and "no run 'nope'" in outcome.output
    assert runner.invoke(app, ["show", "latest", "--format", "xml", "--results", str(tmp_path)]).exit_code == 1


def test_run_with_bad_flags_fails_before_running(tmp_path):
    outcome = runner.invoke(app, ["run", "--setups", "hyperv", "--out", str(tmp_path)])
    assert outcome.exit_code == 1 and "unknown setup 'hyperv'" in outcome.output
    outcome = runner.invoke(app, ["run", "--workloads", "hello,zzz", "--out", str(tmp_path)])
    assert outcome.exit_code == 1 and "unknown workload 'zzz'" in outcome.output
    assert list(tmp_path.iterdir()) == []  # nothing written for a run that never started


def test_list_shows_runs_and_unreadable_ones(tmp_path):
    results.save_run(tmp_path / "r1", make_record())
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{")
    output = runner.invoke(app, ["list", "--results", str(tmp_path)]).output
    assert "r1" in output and "unreadable" in output


def _no_engine_lines(monkeypatch) -> None:
    """Doctor without the container engine's lines: with a layerbench image there, they start a
    container per runtime (tests/unit starts no engine; tests/integration runs doctor whole)."""
    from bench.setups.container import ContainerSetup

    monkeypatch.setattr(ContainerSetup, "doctor_lines", classmethod(lambda cls: []))


def test_doctor_reports_the_bare_setup(monkeypatch):
    _no_engine_lines(monkeypatch)
    outcome = runner.invoke(app, ["doctor"])
    assert outcome.exit_code == 0 and "bare" in outcome.output


def test_clean_prints_one_line_per_thing_removed(tmp_path, monkeypatch):
    from bench import leftovers

    monkeypatch.setattr(leftovers, "clean", lambda run_id, caches: ["container a", "rootless Podman (x): volume b"])
    monkeypatch.setattr("bench.fleet.cleanup.clean_fleets", lambda results_dir: [])
    outcome = runner.invoke(app, ["clean", "--results", str(tmp_path)], env={"COLUMNS": "200"})
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.splitlines() == ["removed container a", "removed rootless Podman (x): volume b"]
