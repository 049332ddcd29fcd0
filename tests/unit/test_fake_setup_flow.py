"""A setup defined only in tests/ flows through run -> show -> report -> charts -> compare, and the
outputs read it from the stored run (a fresh interpreter, without the fake registered, shows it).
The load is tests/stand_ins.fake_load: what is tested is the flow of a declaration, not the load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from markupsafe import escape
from typer.testing import CliRunner

from bench.cli import app
from tests.fake_setup import DAEMON_ROLE, STACK, THREAD_ROLE, InProcessSetup, registered
from tests.stand_ins import bench_ok, fake_load_with

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--setups", "bare,inproc", "--workloads", "hello", "--duration", "0.1", "--warmup", "0",
       "--repeat", "2", "--connections", "2"]


def _bench(*args: str) -> subprocess.CompletedProcess:
    """`bench` in a fresh interpreter: the fake setup is not registered there."""
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_a_test_only_setup_flows_through_every_output(tmp_path, monkeypatch):
    import bench.runner

    monkeypatch.setattr(bench.runner, "generator_for", lambda pinning: fake_load_with(0.15))
    runner = CliRunner()
    with registered():
        first = runner.invoke(app, [*RUN, "--out", str(tmp_path / "a")])
        second = runner.invoke(app, [*RUN, "--out", str(tmp_path / "b"), "--no-report"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "inproc (plain)" in first.output  # the terminal's one label format
    run_a, run_b = (next((tmp_path / name).iterdir()) for name in ("a", "b"))

    summary = json.loads(_bench("show", str(run_a), "--format", "json").stdout)
    assert summary["baseline"] == "bare"
    assert {row["label"] for row in summary["results"]} == {"bare", "inproc (plain)"}
    assert any(row["setup"] == "inproc" and row["metric"] == "throughput_rps" for row in summary["overhead"])
    # Its fixed-cost process was sampled apart from the instance: in `fixed`, never in its own figures.
    fake = next(row for row in summary["results"] if row["setup"] == "inproc")
    assert set(fake["fixed"]["roles"]) == {DAEMON_ROLE.key} and DAEMON_ROLE.key not in fake["roles"]
    assert fake["fixed"]["total"]["rss_mb"] > 0
    costs = {row["setup"]: row for row in summary["layer_costs"]}
    assert costs["inproc"]["fixed"] is not None and costs["bare"]["fixed"] is None
    assert next(layer for layer in summary["layers"] if layer["setup"] == "inproc")["stack_layers"] == list(STACK)
    assert "inproc (plain)" in bench_ok("show", str(run_a))  # in this process too, once unregistered

    bench_ok("report", str(run_a))
    html = (run_a / "report.html").read_text()
    assert escape(InProcessSetup.explanation) in html and escape(InProcessSetup.stack) in html
    assert THREAD_ROLE.label in html and "Test-only layer" in html and InProcessSetup.colour in html
    assert (run_a / "charts" / "headline.png").is_file() and (run_a / "charts" / "cpu_per_request.png").is_file()
    assert (run_a / "charts" / "layer_stack.png").is_file() and "test harness" in (run_a / "charts" /
                                                                                   "layer_stack.svg").read_text()
    assert DAEMON_ROLE.label in html and "what having the engine at all costs" in html

    bench_ok("compare", str(run_a), str(run_b), "--out", str(tmp_path / "cmp"))
    assert "inproc (plain)" in (tmp_path / "cmp" / "compare.html").read_text()
