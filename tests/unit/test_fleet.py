"""The parts of fleet and split runs that need no host: the hosts file, the load wire format, the
wheel, the relay protocol, run format 3's "ran here", and a stored fleet read by every output."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.errors import ResultsError
from bench.events import RunInterrupted
from bench.fleet.hostsfile import LOCAL, HostsFileError, load_hosts, parse_hosts, pick
from bench.fleet.record import HostOutcome, new_fleet, resolve, save_fleet
from bench.load.spec import LoadResult, LoadSpec
from bench.load.wire import result_from_dict, result_to_dict, spec_from_dict, spec_to_dict
from bench.results import load_run
from tests.unit.test_architecture import _fresh_python
from tests.unit.test_plots import copy_run

GOOD = """\
hosts:
  lab1: {host: 10.0.0.11, user: bench, port: 2222}
  lab2:
    host: lab2.example.org
    address: 10.0.0.12
    options: {StrictHostKeyChecking: accept-new}
"""


def test_a_hosts_file_names_hosts_like_an_ssh_config():
    hosts = parse_hosts(GOOD, "hosts.yaml")
    assert hosts["lab1"].host == "10.0.0.11" and hosts["lab1"].port == 2222 and hosts["lab1"].user == "bench"
    assert hosts["lab1"].target == "bench@10.0.0.11:2222"
    assert hosts["lab2"].address == "10.0.0.12" and hosts["lab2"].python == "python3"
    assert parse_hosts("hosts:\n  box: {}\n", "h.yaml")["box"].host == "box"  # like an ssh alias


@pytest.mark.parametrize("text, expected", [
    ("hosts:\n  lab1: {host: a, port: 70000}\n", "h.yaml:2: lab1.port: Input should be less than or equal to 65535"),
    ("hosts:\n  lab1:\n    host: a\n    colour: red\n", "h.yaml:4: lab1.colour: unknown field"),
    ("hosts:\n  lab1: {host: -oProxyCommand=x}\n", "h.yaml:2: lab1.host: must be a host name or an IP address"),
    ("hosts:\n  local: {host: a}\n", "h.yaml:2: local: reserved"),
    ("hosts:\n  lab1: {host: a, key: /nonexistent/key}\n", "h.yaml:2: lab1.key: no such key file"),
    ("hosts:\n  lab1: {host: a, options: {'Proxy Command': x}}\n", "h.yaml:2: lab1.options: option"),
    ("hosts: [a, b]\n", "h.yaml:1: a hosts file is a mapping"),
    ("hosts:\n  lab1: {host: a}\n  lab1: {host: b}\n", "h.yaml:3: duplicate key 'lab1'"),
    ("hosts:\n  lab1: [x\n", "h.yaml:3: not valid YAML"),
])
def test_a_wrong_hosts_file_says_file_line_and_field(text, expected):
    with pytest.raises(HostsFileError) as error:
        parse_hosts(text, "h.yaml")
    assert any(line.startswith(expected) for line in error.value.lines), error.value.lines
    assert all("\n" not in line for line in error.value.lines)


def test_picking_hosts(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text(GOOD)
    assert [entry.name for entry in pick(["lab2", LOCAL, "lab1"], path)] == ["lab2", LOCAL, "lab1"]
    assert pick([LOCAL], tmp_path / "absent.yaml")[0].is_local  # local needs no file
    with pytest.raises(HostsFileError, match="no host 'lab9' in .*known: local, lab1, lab2"):
        pick(["lab9"], path)
    with pytest.raises(HostsFileError, match="no hosts file"):
        load_hosts(tmp_path / "absent.yaml")
    with pytest.raises(HostsFileError, match="twice"):
        pick(["lab1", "lab1"], path)


def test_a_load_spec_and_result_cross_the_wire():
    spec = LoadSpec(path="/cpu?n=10", connections=3, duration_s=2.0, warmup_s=0.5, processes="auto", host="10.0.0.3")
    assert spec_from_dict(json.loads(json.dumps(spec_to_dict(spec)))) == spec
    for bad in ({"port": 1}, {"connections": "8"}, {"processes": 0}, [], {"host": 5}):
        with pytest.raises(ValueError):
            spec_from_dict(bad)
    latency = np.array([0.25, 1.5, 3.125])
    result = LoadResult(requests=3, errors={"read": 1}, duration_s=2.0, latency_ms=latency, app_ms=np.array([0.1] * 3),
                        window=(100.0, 102.0), generator_processes=2, generator_cpu_s=0.5)
    data = json.loads(json.dumps(result_to_dict(result)))
    data["clock_now"] = 103.0  # the sender's clock when it sent; received at 1003.0 here
    back = result_from_dict(data, received_at=1003.0)
    assert back.window == (1000.0, 1002.0)  # moved into the receiver's clock, length kept
    assert np.array_equal(back.latency_ms, latency) and back.requests == 3 and back.errors == {"read": 1}
    assert back.generator_processes == 2 and back.throughput_rps == 1.5


def test_the_wheel_is_this_package_and_the_same_bytes_twice(tmp_path):
    from bench.fleet.wheel import build_wheel

    first = build_wheel(tmp_path / "a")
    second = build_wheel(tmp_path / "b")
    assert first.version == second.version and "+" in first.version
    assert first.path.read_bytes() == second.path.read_bytes()
    with zipfile.ZipFile(first.path) as archive:
        names = archive.namelist()
        meta = archive.read(f"layerbench-{first.version}.dist-info/METADATA").decode()
    assert "bench/cli/__init__.py" in names and "bench/report/templates/fleet.html" in names
    assert not any("__pycache__" in name for name in names)
    assert "Requires-Dist: psutil" in meta and "pytest" not in meta


def test_a_relayed_load_asks_on_stdout_and_reads_the_answer_on_stdin():
    from bench.fleet.worker import Emitter, RelayedLoad
    from bench.scenario import BUILTIN_WORKLOADS

    result = LoadResult(requests=5, errors={}, duration_s=1.0, latency_ms=np.ones(5), app_ms=np.ones(5),
                        window=(1.0, 2.0))
    out = io.StringIO()
    answer = io.StringIO(json.dumps({"kind": "load_result", "result": result_to_dict(result)}) + "\n")
    got = RelayedLoad(Emitter(out), "10.0.0.3", answer)(8080, BUILTIN_WORKLOADS["hello"])
    request = json.loads(out.getvalue())
    assert request["kind"] == "load_request" and request["port"] == 8080
    assert request["spec"]["host"] == "10.0.0.3" and request["spec"]["path"] == "/hello"
    assert got.requests == 5
    refused = io.StringIO(json.dumps({"kind": "load_error", "message": "lab1: load failed"}) + "\n")
    with pytest.raises(RuntimeError, match="lab1: load failed"):
        RelayedLoad(Emitter(io.StringIO()), "10.0.0.3", refused)(8080, BUILTIN_WORKLOADS["hello"])
    with pytest.raises(RunInterrupted):  # the control host went away
        RelayedLoad(Emitter(io.StringIO()), "10.0.0.3", io.StringIO(""))(8080, BUILTIN_WORKLOADS["hello"])


def test_a_run_from_another_host_is_not_judged_by_local_pids(tmp_path):
    dead_pid = 2**22 + 7  # above pid_max's default: no process has it

    def running_elsewhere(data):
        data.update(format_version=3, status="running", runner_pid=dead_pid,
                    runner_host={"hostname": "lab1", "boot_id": "elsewhere"})

    assert load_run(copy_run(tmp_path / "a", running_elsewhere)).effective_status() == "running"

    def running_here(data):
        data.update(format_version=3, status="running", runner_pid=dead_pid,
                    runner_host={"hostname": os.uname().nodename, "boot_id": None})

    assert load_run(copy_run(tmp_path / "b", running_here)).effective_status() == "incomplete"

    def version_2(data):  # v2 named only the machine: its hostname stands for the runner's
        data.update(format_version=2, layers=[], status="running", runner_pid=dead_pid)

    migrated = load_run(copy_run(tmp_path / "c", version_2))
    assert migrated.runner_host == {"hostname": "synthetic"} and migrated.split == {}
    assert migrated.effective_status() == "running"  # written on "synthetic", not here


def _fleet(tmp_path: Path) -> Path:
    """A stored fleet of three hosts: two runs came home (different machines), one host failed."""
    fleet_dir = tmp_path / "20261129-120000-small-fleet-00001"
    fleet_dir.mkdir(parents=True)
    copy_run(fleet_dir).rename(fleet_dir / "lab1")

    def other_machine(data):
        data["machine"] = {**data["machine"], "hostname": "lab2", "cpus_logical": 4}

    copy_run(tmp_path / "x", other_machine).rename(fleet_dir / "lab2")
    hosts = [HostOutcome(name="lab1", status="complete", run_dir="lab1"),
             HostOutcome(name="lab2", status="complete", run_dir="lab2"),
             HostOutcome(name="lab3", status="failed", error="connection lost mid-run")]
    record = new_fleet(fleet_dir.name, {"name": "small"}, ["bench", "run"], hosts)
    record.status = "incomplete"
    save_fleet(fleet_dir, record)
    return fleet_dir


def test_a_fleet_is_one_comparison_with_the_machines_side_by_side(tmp_path):
    from bench.fleet.model import Fleet

    fleet = Fleet.load(_fleet(tmp_path))
    assert list(fleet.runs) == ["lab1", "lab2"]
    assert fleet.comparison.titles == ["lab1", "lab2"] and fleet.comparison.rows
    machines = dict(fleet.machines())
    assert machines["logical CPUs"] == ["2", "4", "–"] and machines["status"][2].startswith("failed")
    texts = [caveat.text for caveat in fleet.caveats()]
    assert any("host lab3" in text and "connection lost" in text for text in texts)
    assert any("cpus_logical is 2 in lab1 but 4 in lab2" in text for text in texts)


def test_show_report_compare_and_list_read_a_fleet(tmp_path):
    fleet_dir = _fleet(tmp_path)
    runner = CliRunner()
    shown = runner.invoke(app, ["show", str(fleet_dir), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert set(json.loads(shown.output)["hosts"]) == {"lab1", "lab2"}
    table = runner.invoke(app, ["show", "latest", "--results", str(tmp_path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "lab3" in table.output and "connection lost" in table.output, table.output
    reported = runner.invoke(app, ["report", fleet_dir.name, "--results", str(tmp_path)])
    assert reported.exit_code == 0, reported.output
    html = (fleet_dir / "report.html").read_text()
    assert "The machines, side by side" in html and all(name in html for name in ("lab1", "lab2", "lab3"))
    assert (fleet_dir / "lab1" / "report.html").exists()  # each host's own report, linked
    compared = runner.invoke(app, ["compare", str(fleet_dir), "--out", str(tmp_path / "cmp")], env={"COLUMNS": "200"})
    assert compared.exit_code == 0 and "run 2 = lab2" in compared.output, compared.output
    listed = runner.invoke(app, ["list", "--results", str(tmp_path)], env={"COLUMNS": "200"})
    assert "fleet: lab1 complete, lab2 complete, lab3 failed" in listed.output, listed.output
    assert resolve("latest", tmp_path) == fleet_dir


def test_reading_a_fleet_imports_no_setup_runner_or_load_code(tmp_path):
    fleet_dir = _fleet(tmp_path)
    code = f"""
from typer.testing import CliRunner
from bench.cli import app
runner = CliRunner()
for args in (["show", {str(fleet_dir)!r}], ["show", {str(fleet_dir)!r}, "--format", "json"],
             ["report", {str(fleet_dir)!r}], ["compare", {str(fleet_dir)!r}, "--out", {str(tmp_path / 'c')!r}]):
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, (args, outcome.output)
"""
    loaded = _fresh_python(code)
    assert sorted(m for m in loaded if m.startswith(("bench.setups", "bench.load", "bench.metrics", "bench.runner",
                                                     "bench.images", "bench.fleet.ssh", "bench.fleet.remote"))) == []


def test_a_broken_fleet_file_is_one_line(tmp_path):
    from bench.fleet.record import load_fleet

    (tmp_path / "fleet.json").write_text('{"format_version": 9}')
    with pytest.raises(ResultsError, match="fleet format version 9"):
        load_fleet(tmp_path)
    (tmp_path / "fleet.json").write_text('{"format_version": 1, "fleet_id": 3}')
    with pytest.raises(ResultsError, match="fleet_id"):
        load_fleet(tmp_path)


def test_doctor_speaks_json():
    outcome = CliRunner().invoke(app, ["doctor", "--json"])
    assert outcome.exit_code == 0, outcome.output
    found = json.loads(outcome.output)
    assert found["machine"]["hostname"] == os.uname().nodename
    assert all({"setup", "ok", "reason", "stack"} <= set(setup) for setup in found["setups"])


def test_a_split_run_says_so_in_every_output(tmp_path):
    from bench.model import Run
    from bench.report.context import settings

    def split(data):
        data.update(format_version=3, split={"load_host": "lab1", "load_address": "10.0.0.11",
                                             "listen_address": "10.0.0.12",
                                             "load_machine": {"hostname": "lab1", "cpus_logical": 8}})

    run = Run.load(copy_run(tmp_path, split))
    texts = [caveat.text for caveat in run.caveats() if caveat.kind == "split"]
    assert texts == ["Split run: the load came from lab1 (10.0.0.11); the app listened on 10.0.0.12 only, "
                     "not on loopback."]
    rows = dict(settings(run))
    assert rows["load from"].startswith("lab1 (10.0.0.11)") and "8 logical CPUs" in rows["load host"]
    shown = CliRunner().invoke(app, ["show", str(run.run_dir)], env={"COLUMNS": "200"})
    assert "Split run: the load came from lab1" in shown.output
