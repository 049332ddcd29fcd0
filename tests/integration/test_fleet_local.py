"""A fleet of this machine alone: the same `bench remote-run` path every host takes, without ssh,
stopped half-way by SIGTERM (as Ctrl-C): the host stops its setups, its trials so far come home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("testhosts")]  # its checks see every ssh of the machine

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_stops_a_fleet_and_keeps_what_was_measured(tmp_path):
    command = [sys.executable, "-m", "bench", "run", "--setups", "bare", "--workloads", "hello", "--duration", "1",
               "--warmup", "0.2", "--repeat", "20", "--hosts", "local", "--out", str(tmp_path), "--no-report"]
    lines = []
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "COLUMNS": "160"}) as process:
        try:
            for line in process.stdout:
                lines.append(line.rstrip())
                if "[local]" in line and "req/s" in line:
                    process.send_signal(signal.SIGTERM)
                    break
            lines += process.stdout.read().splitlines()
            assert process.wait(timeout=120) == 130, lines
        finally:
            if process.poll() is None:
                process.kill()
    fleet_dir = next(path for path in tmp_path.iterdir() if (path / "fleet.json").exists())
    local = json.loads((fleet_dir / "fleet.json").read_text())["hosts"][0]
    assert local["status"] == "interrupted" and local["run_dir"] == "local", local
    run = json.loads((fleet_dir / "local" / "run.json").read_text())
    assert run["status"] == "incomplete" and 1 <= len(run["trials"]) < 20
    assert any("interrupted" in line for line in lines), lines
    time.sleep(0.5)
    here = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    assert not [line for line in here if str(fleet_dir) in line or ("bench.app.server" in line and str(ROOT) in line)]


def test_a_stored_fleet_is_reported_with_each_hosts_own_report_and_compared_with_charts(tmp_path):
    """Slow (every host's report and the comparison draw charts), so not among the unit tests."""
    from typer.testing import CliRunner

    from bench.cli import app
    from tests.unit.test_fleet import _fleet

    fleet_dir = _fleet(tmp_path)
    runner = CliRunner()
    reported = runner.invoke(app, ["report", fleet_dir.name, "--results", str(tmp_path)])
    assert reported.exit_code == 0, reported.output
    html = (fleet_dir / "report.html").read_text()
    assert "The machines, side by side" in html and all(name in html for name in ("lab1", "lab2", "lab3"))
    assert (fleet_dir / "lab1" / "report.html").exists()  # each host's own report, linked
    compared = runner.invoke(app, ["compare", str(fleet_dir), "--out", str(tmp_path / "cmp")], env={"COLUMNS": "200"})
    assert compared.exit_code == 0 and "run 2 = lab2" in compared.output, compared.output


def test_doctor_speaks_json():
    from typer.testing import CliRunner

    from bench.cli import app

    outcome = CliRunner().invoke(app, ["doctor", "--json"])
    assert outcome.exit_code == 0, outcome.output
    found = json.loads(outcome.output)
    assert found["machine"]["hostname"] == os.uname().nodename
    assert all({"setup", "ok", "reason", "stack"} <= set(setup) for setup in found["setups"])
