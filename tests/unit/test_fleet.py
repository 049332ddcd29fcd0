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
from bench.fleet.inventory import LOCAL, LOCAL_HOST, InventoryError, select
from bench.fleet.record import HostOutcome, new_fleet, resolve, save_fleet
from bench.load.spec import LoadResult, LoadSpec
from bench.load.wire import result_from_dict, result_to_dict, spec_from_dict, spec_to_dict
from bench.results import load_run
from tests.unit.test_architecture import _fresh_python
from tests.unit.test_plots import copy_run

INVENTORY_YAML = """\
all:
  vars: {ansible_user: bench}
  children:
    labs:
      hosts:
        lab1: {ansible_host: 10.0.0.11, ansible_port: 2222}
        lab2: {ansible_host: 10.0.0.12, layerbench_address: 10.0.0.12, ansible_become: true}
    web:
      hosts:
        lab3: {ansible_host: 10.0.0.13}
"""
INVENTORY_INI = """\
lab3 ansible_host=10.0.0.13

[labs]
lab1 ansible_host=10.0.0.11 ansible_port=2222
lab2 ansible_host=10.0.0.12 layerbench_address=10.0.0.12 ansible_become=true

[all:vars]
ansible_user=bench
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text(INVENTORY_YAML)
    return path


@pytest.mark.parametrize("name, text", [("lab.yml", INVENTORY_YAML), ("lab.ini", INVENTORY_INI)])
def test_hosts_and_groups_come_from_an_ansible_inventory_yaml_or_ini(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    hosts, found = select("labs,local,lab3", None, path)
    assert [host.name for host in hosts] == ["lab1", "lab2", LOCAL, "lab3"]
    assert hosts[0].target == "bench@10.0.0.11:2222" and hosts[1].address == "10.0.0.12"
    assert hosts[2].is_local and found.explicit
    assert [host.name for host in select("all", "labs:!lab2", path)[0]] == ["lab1"]  # --limit as in Ansible
    assert [host.name for host in select("labs,local", "lab2", path)[0]] == ["lab2"]  # local too is limited
    assert [host.name for host in select("labs,local", "lab2,local", path)[0]] == ["lab2", LOCAL]


def test_names_that_mean_nothing_are_one_line_each(inventory):
    with pytest.raises(InventoryError, match=r"'lab9' names no host or group in .*groups: labs, web; hosts: lab1"):
        select("lab9,labs", None, inventory)
    with pytest.raises(InventoryError, match="names nothing"):
        select(",", None, inventory)
    with pytest.raises(InventoryError, match="twice"):
        select("lab1,lab1", None, inventory)
    with pytest.raises(InventoryError, match="no inventory .*absent.yml"):
        select("lab1", None, inventory.parent / "absent.yml")
    assert select("local", None, None) == ([LOCAL_HOST], None)  # local alone reads no inventory
    inventory.write_text(INVENTORY_YAML.replace("lab3:", "local:"))
    with pytest.raises(InventoryError, match="`local` always means this machine"):
        select("lab1", None, inventory)


def test_hosts_check_and_run_both_refuse_a_comma(tmp_path):
    """A bug seen: `bench hosts check --hosts ","` printed nothing and exited 0."""
    for args in (["hosts", "check", "--hosts", ","], ["run", "--setups", "bare", "--hosts", ",", "--out",
                                                      str(tmp_path)]):
        outcome = CliRunner().invoke(app, args)
        assert outcome.exit_code == 1 and "names nothing" in outcome.output, (args, outcome.output)


def _in(folder: Path, monkeypatch) -> Path:
    monkeypatch.chdir(folder)
    monkeypatch.delenv("LAYERBENCH_INVENTORY", raising=False)
    monkeypatch.delenv("LAYERBENCH_HOSTS", raising=False)
    return folder


@pytest.mark.parametrize("host_vars, said", [
    ("ansible_ssh_common_args: '-o ProxyCommand=\"touch {marker}\"'", "ansible_ssh_common_args sets ProxyCommand"),
    ("ansible_ssh_extra_args: '-oPermitLocalCommand=yes -oLocalCommand=\"touch {marker}\"'", "sets PermitLocalCommand"),
    ("ansible_ssh_args: '-o KnownHostsCommand=/bin/true'", "ansible_ssh_args sets KnownHostsCommand"),
    ("ansible_ssh_common_args: '-F ./evil_config'", "config file of its own"),
    ("ansible_ssh_executable: ./evil", "names a program to run here"),
    ("ansible_connection: local", "not ssh"),
    ("ansible_host: \"{{{{ lookup('pipe', 'touch {marker}') }}}}\"", "holds a template"),
])
def test_an_inventory_nobody_named_may_not_run_commands_here(tmp_path, monkeypatch, host_vars, said):
    """A file found in the current folder may come from a cloned repository: it may not run commands here."""
    marker = tmp_path / "ran"
    _in(tmp_path, monkeypatch)
    (tmp_path / "inventory.yml").write_text("all:\n  hosts:\n    lab1:\n      " + host_vars.format(marker=marker)
                                            + "\n")
    with pytest.raises(InventoryError) as refused:
        select("lab1")
    assert any(said in line for line in refused.value.lines), refused.value.lines
    assert "--inventory inventory.yml" in refused.value.lines[-1] and "~/.ssh/config" in refused.value.lines[-1]
    hosts, found = select("lab1", None, Path("inventory.yml"))  # named: the user's own choice
    assert [host.name for host in hosts] == ["lab1"] and found.explicit
    assert not marker.exists()


def test_an_old_hosts_file_in_the_folder_runs_nothing_and_says_how_to_convert(tmp_path, monkeypatch):
    """The same, as it fell on 194c765: ./hosts.yaml's `options: {ProxyCommand: ...}` ran here."""
    marker = tmp_path / "ran"
    _in(tmp_path, monkeypatch)
    (tmp_path / "hosts.yaml").write_text(f"hosts:\n  lab1:\n    host: 192.0.2.1\n    options: {{ProxyCommand: "
                                         f"'sh -c \"touch {marker}\"'}}\n")
    outcome = CliRunner().invoke(app, ["hosts", "check", "--hosts", "lab1"])
    assert outcome.exit_code == 1 and not marker.exists(), outcome.output
    assert "bench hosts convert hosts.yaml > inventory.yml" in outcome.output.replace("\n", " ")


def test_an_old_hosts_file_converts_to_an_inventory_that_says_the_same(tmp_path):
    old = tmp_path / "hosts.yaml"
    key = tmp_path / "key"
    key.write_text("")
    old.write_text(f"hosts:\n  lab1: {{host: 10.0.0.11, user: bench, port: 2222, key: {key}}}\n"
                   "  lab2: {host: lab2.example.org, address: 10.0.0.12, python: python3.11,\n"
                   "         options: {StrictHostKeyChecking: accept-new}}\n  box: {}\n")
    converted = tmp_path / "inventory.yml"
    outcome = CliRunner().invoke(app, ["hosts", "convert", str(old)])
    assert outcome.exit_code == 0, outcome.output
    converted.write_text(outcome.output)
    hosts, found = select("all", None, converted)
    by_name = {host.name: host for host in hosts}
    assert by_name["lab1"].target == "bench@10.0.0.11:2222" and by_name["lab2"].address == "10.0.0.12"
    assert found.host_vars("lab1")["ansible_ssh_private_key_file"] == str(key)
    assert found.host_vars("lab2")["layerbench_python"] == "python3.11"
    assert found.host_vars("lab2")["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=accept-new"
    with pytest.raises(InventoryError, match="bench hosts convert"):
        select("lab1", None, old)


def test_the_direct_channel_logs_in_as_the_inventory_says(inventory):
    from bench.fleet.channel import ChannelError, ssh_argv
    from bench.fleet.inventory import Inventory

    found = Inventory(inventory, explicit=True)
    argv = ssh_argv("lab1", found.rendered("lab1"), "true")
    assert argv[-3:] == ["--", "10.0.0.11", "true"] and ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]
    assert ["-l", "bench"] == argv[argv.index("-l"):argv.index("-l") + 2] and "BatchMode=yes" in argv
    become = ssh_argv("lab2", found.rendered("lab2"), "echo hi")
    assert become[-1] == "sudo -n -H -u root -- sh -c 'echo hi'"
    with pytest.raises(ChannelError, match="password"):
        ssh_argv("lab1", {"ansible_password": "x"}, "true")


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
    assert "bench/cli/__init__.py" in names and "bench/outputs/report/templates/fleet.html" in names
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
    assert migrated.runner_host.stored() == {"hostname": "synthetic"} and migrated.split is None
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


def test_the_fleet_report_puts_each_hosts_figures_side_by_side(tmp_path):
    """The page renders the built rows: each host's figure, and the second's ratio with its verdict."""
    from bench.fleet.model import Fleet
    from bench.outputs.fleet_report import write_fleet_report
    from bench.outputs.rows import fleet_rows

    fleet_dir = _fleet(tmp_path)
    html = write_fleet_report(fleet_dir, host_reports=False).read_text()
    row = next(row for row in fleet_rows(Fleet.load(fleet_dir)) if row.values[1].ratio)
    assert f"<td>{row.values[0].median}<" in html and f"{row.values[1].ratio}× — {row.values[1].verdict}" in html


def test_show_compare_and_list_read_a_fleet(tmp_path):
    fleet_dir = _fleet(tmp_path)
    runner = CliRunner()
    shown = runner.invoke(app, ["show", str(fleet_dir), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert set(json.loads(shown.output)["hosts"]) == {"lab1", "lab2"}
    table = runner.invoke(app, ["show", "latest", "--results", str(tmp_path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "lab3" in table.output and "connection lost" in table.output, table.output
    compared = runner.invoke(app, ["compare", str(fleet_dir), "--format", "markdown"], env={"COLUMNS": "200"})
    assert compared.exit_code == 0 and "lab2" in compared.output, compared.output
    listed = runner.invoke(app, ["list", "--results", str(tmp_path)], env={"COLUMNS": "200"})
    assert "fleet: lab1 complete, lab2 complete, lab3 failed" in listed.output, listed.output
    assert resolve("latest", tmp_path) == fleet_dir


def test_reading_a_fleet_imports_no_setup_runner_load_or_ansible_code(tmp_path):
    fleet_dir = _fleet(tmp_path)
    code = f"""
from typer.testing import CliRunner
from bench.cli import app
runner = CliRunner()
for args in (["show", {str(fleet_dir)!r}], ["show", {str(fleet_dir)!r}, "--format", "json"],
             ["compare", {str(fleet_dir)!r}, "--format", "markdown"]):
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, (args, outcome.output)
import sys
assert not [name for name in sys.modules if name.startswith(("ansible", "ansible_runner"))]
"""
    loaded = _fresh_python(code)
    assert sorted(m for m in loaded if m.startswith(("bench.setups", "bench.load", "bench.metrics", "bench.runner",
                                                     "bench.images", "bench.fleet.engine", "bench.fleet.inventory",
                                                     "bench.fleet.orchestrate"))) == []


def test_a_broken_fleet_file_is_one_line(tmp_path):
    from bench.fleet.record import load_fleet

    (tmp_path / "fleet.json").write_text('{"format_version": 9}')
    with pytest.raises(ResultsError, match="fleet format version 9"):
        load_fleet(tmp_path)
    (tmp_path / "fleet.json").write_text('{"format_version": 1, "fleet_id": 3}')
    with pytest.raises(ResultsError, match="fleet_id"):
        load_fleet(tmp_path)


def test_a_split_run_says_so_in_every_output(tmp_path):
    from bench.model import Run
    from bench.outputs.report.context import settings

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


def test_load_from_local_without_a_target_says_so_and_runs_no_ssh(tmp_path, monkeypatch):
    """A bug seen: `--load-from local` tried ssh to localhost:22."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ssh").write_text(f"#!/bin/sh\ntouch {tmp_path / 'ssh-ran'}\nexit 255\n")
    (fake / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    outcome = CliRunner().invoke(app, ["run", "--setups", "bare", "--load-from", "local", "--out", str(tmp_path / "r")])
    assert outcome.exit_code == 1 and "--load-from local needs a remote target" in outcome.output, outcome.output
    assert not (tmp_path / "ssh-ran").exists()


def test_resuming_a_fleet_says_it_cannot_and_what_to_do(tmp_path):
    """A bug seen: `bench run --resume <fleet folder>` said "no run"."""
    fleet_dir = _fleet(tmp_path)
    for name in (str(fleet_dir), fleet_dir.name):
        outcome = CliRunner().invoke(app, ["run", "--resume", name, "--out", str(tmp_path)], env={"COLUMNS": "300"})
        said = " ".join(outcome.output.split())
        assert outcome.exit_code == 1 and "is a fleet, which cannot be resumed" in said, said
        assert "--hosts NAMES" in said and "bench clean" in said


def _poll(run: Path, wait_s: float = 0.0) -> dict:
    import subprocess
    import sys

    from bench.fleet.engine import PLAYBOOK

    script = PLAYBOOK.parent / "files" / "poll.py"
    done = subprocess.run([sys.executable, "-I", "-S", str(script), str(run), str(wait_s)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_watch_brings_each_event_line_once_and_packs_the_run_at_its_end(tmp_path):
    run = tmp_path / "runs" / "fleet-1"
    run.mkdir(parents=True)
    (run / "worker.pid").write_text(f"{os.getpid()}\n")  # alive: this test
    (run / "events.jsonl").write_text('{"kind": "hello"}\n{"kind": "event", "event": {}}\n{"kind": "par')
    first = _poll(run)
    assert first["lines"] == ['{"kind": "hello"}', '{"kind": "event", "event": {}}'] and not first["finished"]
    assert (run / "heartbeat").exists()  # the run sees somebody looking
    assert _poll(run)["lines"] == []  # nothing new, and no half line
    with open(run / "events.jsonl", "a") as events:
        events.write('tial"}\n')
    (run / "stderr.log").write_text("one\ntwo\n")
    (run / "r1").mkdir()
    (run / "r1" / "run.json").write_text("{}")
    (run / "exit").write_text("3\n")
    last = _poll(run)
    assert last == {"lines": ['{"kind": "partial"}'], "finished": True, "exit": 3, "stderr": ["one", "two"],
                    "packed": True}
    import tarfile

    with tarfile.open(f"{run}.tar") as archive:
        assert sorted(archive.getnames()) == ["r1", "r1/run.json"]
    assert _poll(tmp_path / "runs" / "never")["finished"]  # a host where nothing started


def test_a_watched_run_stops_itself_when_asked_or_when_nobody_looks(tmp_path, monkeypatch):
    import signal
    import threading

    from bench.fleet import worker

    sent = []
    monkeypatch.setattr(worker.os, "kill", lambda pid, sig: sent.append(sig))
    monkeypatch.setattr(worker, "WATCH_EVERY_S", 0.01)
    (tmp_path / "stop").write_text("")
    worker.watchdog(tmp_path, threading.Event(), timeout_s=None)
    assert sent == [signal.SIGTERM]
    (tmp_path / "stop").unlink()
    (tmp_path / "heartbeat").write_text("")
    os.utime(tmp_path / "heartbeat", (1, 1))
    worker.watchdog(tmp_path, threading.Event(), timeout_s=0.05)  # nobody looked for 50 ms
    assert sent == [signal.SIGTERM, signal.SIGTERM]


def test_ansible_events_become_progress_and_reasons():
    from bench.fleet.engine import Listener, Outcome, Playbook

    class Heard(Listener):
        def __init__(self):
            self.heard = []

        def task(self, host, name, done):
            self.heard.append(("task", host, name, done))

        def probe(self, host, found):
            self.heard.append(("probe", host, found["user"]))

        def lines(self, host, lines):
            self.heard.append(("lines", host, lines))

    heard, outcome = Heard(), Outcome()
    playbook = Playbook(None, None, heard)

    def event(kind, host, task, res=None, **more):
        playbook._event({"event": kind, "event_data": {"host": host, "task": task, "res": res or {}, **more}},
                        outcome, Path("/nonexistent"))

    event("runner_on_start", "lab1", "probe")
    event("runner_on_ok", "lab1", "what the host has", {"ansible_facts": {"lb": {"user": "root"}}})
    event("runner_retry", "lab1", "watch the run", {"stdout": '{"lines": ["a", "b"], "finished": false}\r\n'})
    event("runner_on_ok", "lab1", "watch the run", {"stdout": '{"lines": ["c"], "finished": true, "exit": 0}'})
    event("runner_on_unreachable", "lab2", "watch the run", {"msg": "Task failed: Failed to connect to the host via "
                                                                    "ssh: Connection timed out", "unreachable": True})
    event("runner_on_failed", "lab3", "install layerbench 1", {"msg": "non-zero return code", "rc": 1,
                                                               "stderr": "ERROR: No matching distribution\n"})
    event("runner_on_failed", "lab3", "watch the run", {"msg": "ignored"}, ignore_errors=True)
    assert ("probe", "lab1", "root") in heard.heard and ("task", "lab1", "probe", False) in heard.heard
    assert [entry for entry in heard.heard if entry[0] == "lines"] == [("lines", "lab1", ["a", "b"]),
                                                                       ("lines", "lab1", ["c"])]
    assert outcome.finished == {"lab1": {"lines": ["c"], "finished": True, "exit": 0}}
    assert outcome.failed == {
        "lab2": "watch the run: Failed to connect to the host via ssh: Connection timed out",
        "lab3": "install layerbench 1: non-zero return code: ERROR: No matching distribution"}


def test_bench_clean_finishes_a_fleet_whose_runner_was_killed(tmp_path, monkeypatch):
    """A killed fleet runner's fleet, on this machine's side (the hosts' side: tests/integration/test_fleet.py)."""
    import tempfile

    from bench.fleet import localdirs
    from bench.fleet.cleanup import clean_fleets
    from bench.fleet.record import load_fleet

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    fleet_dir = _fleet(tmp_path / "results")
    record = load_fleet(fleet_dir)
    record.status, record.runner_pid = "running", 2**22 + 7  # no process has it
    record.host("lab3").status = "running"
    record.inventory = str(tmp_path / "gone.yml")
    from bench.fleet.record import save_fleet

    save_fleet(fleet_dir, record)
    (fleet_dir / "runner.lock").write_text("4194311\n")  # the killed runner's lock, held by nobody now
    dead = localdirs.LocalFolder()
    dead.lock.release()  # as SIGKILL releases it
    import subprocess
    import sys

    # as an ansible-playbook its killed runner left behind, naming the folder on its command line
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", f"{dead.path}/runner"])
    import time

    while not localdirs._naming(dead.path):  # until it has exec'd (a fork still shows pytest's command line)
        time.sleep(0.02)
    live = localdirs.LocalFolder()
    assert load_fleet(fleet_dir).runner_gone(fleet_dir)
    lines = clean_fleets(tmp_path / "results")
    assert any("nothing on the hosts of fleet" in line and "remove ~/.cache/layerbench/fleet/runs/" in line
               for line in lines), lines
    assert f"ssh folder {dead.path}" in lines and not dead.path.exists() and live.path.exists()
    orphan.wait(timeout=10)  # ended (TimeoutExpired otherwise)
    assert any(f"process {orphan.pid}" in line for line in lines), lines
    after = load_fleet(fleet_dir)
    assert after.status == "incomplete" and after.host("lab3").status == "interrupted"
    assert not after.runner_gone(fleet_dir) and clean_fleets(tmp_path / "results") == []
    live.close()


def test_a_fleet_of_format_1_still_reads(tmp_path):
    from bench.fleet.record import load_fleet

    (tmp_path / "fleet.json").write_text(json.dumps({"format_version": 1, "fleet_id": "f", "status": "running",
                                                     "created_at": "2026-11-29T12:00:00+00:00",
                                                     "hosts": [{"name": "lab1", "status": "running"}]}))
    record = load_fleet(tmp_path)
    assert record.runner_pid == 0 and record.inventory is None and record.runner_gone(tmp_path)
