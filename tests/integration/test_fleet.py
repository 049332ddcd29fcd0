"""Fleet runs and split runs against real hosts made on this machine (tests/testhosts.py): containers
with their own sshd and dockerd on an internal network, reached with the system's OpenSSH client.

layerbench installs itself on each host (wheel + offline wheelhouse), runs there and brings the run
folders home. The hosts are started once for the module; the last test kills one of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.testhost_image import build_image, image_size_bytes, image_tag
from tests.testhosts import kill, start_hosts, write_hosts_file

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.xdist_group("testhosts")]  # one build of the hosts

ROOT = Path(__file__).resolve().parents[2]
BENCH = [sys.executable, "-m", "bench"]


@pytest.fixture(scope="session")
def testhost_image():
    """The test-host image, built once per session (about 80 s cold, cached in Docker afterwards)."""
    require(shutil.which("ssh") is not None, "the OpenSSH client is missing (apt-get install openssh-client)")
    daemon = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    require(bool(daemon), "no Docker daemon answers (run: scripts/host-setup.sh)")
    if image_size_bytes(image_tag()) is None:
        require(os.geteuid() == 0, "building the test-host image needs root")
        require(shutil.which("debootstrap") is not None, "debootstrap is missing (apt-get install debootstrap)")
    return build_image()


@pytest.fixture(scope="module")
def lab(testhost_image, tmp_path_factory):
    """Two hosts with their own Docker engine, and a hosts file naming them lab1 and lab2."""
    with start_hosts(2, docker=True) as hosts:
        folder = tmp_path_factory.mktemp("fleet")
        yield hosts, write_hosts_file(hosts, folder / "hosts.yaml"), folder


def _bench(*args: str, timeout_s: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*BENCH, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "COLUMNS": "160"})


def _nothing_running(hosts) -> None:
    """No layerbench process, app, container or ssh master is left on any host or here."""
    for host in hosts:
        processes = host.ssh("ps -eo args", check=False).stdout.splitlines()
        ours = [line for line in processes if re.search(r"bench|python", line) and "ps -eo" not in line]
        assert ours == [], f"{host.name} still runs {ours}"
        if host.docker:
            assert host.ssh("docker ps -aq").stdout.strip() == "", f"{host.name} still has containers"
    here = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    masters = [line for line in here if "lb-ssh-" in line and "ps -eo" not in line]
    assert masters == [], f"ssh master connections outlived the run: {masters}"
    apps = [line for line in here if "from bench.app.server import main" in line and str(ROOT) in line]
    assert apps == [], f"apps left running here: {apps}"


def _fleet_dir(out: Path) -> Path:
    found = [path for path in out.iterdir() if (path / "fleet.json").exists()]
    assert len(found) == 1, list(out.iterdir())
    return found[0]


def test_a_fleet_of_two_hosts_and_this_machine_gives_one_report_with_three_machines(lab):
    hosts, hosts_file, folder = lab
    out = folder / "fleet-results"
    done = _bench("run", "--setups", "bare", "--workloads", "hello", "--duration", "1", "--warmup", "0.3",
                  "--repeat", "2", "--hosts", "lab1,lab2,local", "--hosts-file", str(hosts_file), "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "[lab1]" in done.stdout and "[lab2]" in done.stdout and "[local]" in done.stdout  # streamed, prefixed
    fleet_dir = _fleet_dir(out)
    fleet = json.loads((fleet_dir / "fleet.json").read_text())
    assert [(h["name"], h["status"]) for h in fleet["hosts"]] == [("lab1", "complete"), ("lab2", "complete"),
                                                                  ("local", "complete")]
    for name, hostname in (("lab1", "lab1"), ("lab2", "lab2"), ("local", os.uname().nodename)):
        run = json.loads((fleet_dir / name / "run.json").read_text())
        assert run["status"] == "complete" and run["machine"]["hostname"] == hostname
        assert [t["status"] for t in run["trials"]] == ["ok", "ok"]
    html = (fleet_dir / "report.html").read_text()
    machines = html[html.index('id="machines"'):html.index('id="warnings"')]
    assert machines.count("<th class=\"l\">lab") == 2 and "<th class=\"l\">local</th>" in machines
    assert all(f">{name}<" in machines for name in ("lab1", "lab2", os.uname().nodename))
    # show, compare and report read the fleet folder as one comparison across its hosts
    shown = json.loads(_bench("show", str(fleet_dir), "--format", "json").stdout)
    assert set(shown["hosts"]) == {"lab1", "lab2", "local"}
    assert [run["name"] for run in shown["comparison"]["runs"]] == ["lab1", "lab2", "local"]
    compared = _bench("compare", str(fleet_dir), "--out", str(folder / "cmp"))
    assert compared.returncode == 0 and "run 3 = local" in compared.stdout, compared.stdout + compared.stderr
    _nothing_running(hosts)


def test_hosts_check_says_what_runs_where_and_what_cannot_be_reached(lab):
    hosts, hosts_file, folder = lab
    with_ghost = folder / "hosts-ghost.yaml"
    with_ghost.write_text(hosts_file.read_text() + f"  ghost: {{host: {hosts[0].address}, port: 1, user: lab}}\n")
    checked = _bench("hosts", "check", "--hosts", "lab1,ghost,local", "--hosts-file", str(with_ghost))
    out = checked.stdout.replace("\n", " ")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert re.search(r"lab1 +reachable \(lab@", out) and re.search(r"ok +bare", out), out
    assert "ghost  unreachable" in out and "fix: check host, user, port and key" in out, out
    assert "local  reachable (this machine)" in out


def _listening(host) -> set[str]:
    return {line.split()[3] for line in host.ssh("ss -ltnH").stdout.splitlines() if line.strip()}


def test_a_split_run_measures_hello_from_one_host_against_another(lab, tmp_path):
    from bench.fleet.hostsfile import pick
    from bench.fleet.orchestrate import run_fleet
    from bench.scenario import from_flags

    hosts, hosts_file, _ = lab
    target = hosts[1]
    before = _listening(target)
    seen: list[set[str]] = []

    def progress(event):  # while each trial's setup runs: what listens on the target
        if event.kind == "trial" and event.data.get("host") == "lab2":
            seen.append(_listening(target) - before)

    scenario = from_flags(["bare", "container"], ["hello"], duration=1.0, warmup=0.3, repeat=2)
    fleet_dir = run_fleet(scenario, pick(["lab2"], hosts_file), tmp_path, progress, ["test"],
                          load_from=pick(["lab1"], hosts_file)[0])
    fleet = json.loads((fleet_dir / "fleet.json").read_text())
    assert fleet["status"] == "complete", fleet["hosts"]
    run = json.loads((fleet_dir / "lab2" / "run.json").read_text())
    assert run["split"]["load_host"] == "lab1" and run["split"]["listen_address"] == target.address
    assert run["split"]["load_machine"]["hostname"] == "lab1"
    by_setup = {}
    for trial in run["trials"]:
        assert trial["status"] == "ok", trial["error"]
        assert trial["load"]["requests"] > 0 and trial["load"]["notes"]["load_host"] == "lab1"
        by_setup.setdefault(trial["setup"], []).append(trial["load"]["throughput_rps"])
    assert set(by_setup) == {"bare", "container"}
    # The app (or docker-proxy) listened on the target's address and on nothing else
    assert len(seen) == 4 and all(seen), seen
    assert all(address.rsplit(":", 1)[0] == target.address for found in seen for address in found), seen
    print(f"\nsplit /hello req/s from lab1 to lab2: {by_setup}")
    _nothing_running(hosts)


def test_a_split_run_with_this_machine_as_the_target(lab):
    hosts, hosts_file, folder = lab
    out = folder / "split-here"
    done = _bench("run", "--setups", "bare", "--workloads", "hello", "--duration", "1", "--warmup", "0.3",
                  "--repeat", "2", "--load-from", "lab1", "--hosts-file", str(hosts_file), "--out", str(out),
                  "--no-report")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "split run: the app on this machine listens on" in done.stdout.replace("\n", " ")
    run = json.loads(next(out.glob("*/run.json")).read_text())
    gateway = run["split"]["listen_address"]  # this machine's address on the hosts' network
    assert gateway.rsplit(".", 1)[0] == hosts[0].address.rsplit(".", 1)[0] and gateway != hosts[0].address
    assert [t["status"] for t in run["trials"]] == ["ok", "ok"]
    assert all(t["load"]["notes"]["load_host"] == "lab1" for t in run["trials"])
    _nothing_running(hosts)


def test_killing_a_host_mid_run_fails_only_that_host(lab, tmp_path):
    from bench.fleet.hostsfile import pick
    from bench.fleet.orchestrate import run_fleet
    from bench.fleet.report import write_fleet_report
    from bench.scenario import from_flags

    hosts, hosts_file, _ = lab
    victim = hosts[1]
    killed: list[str] = []
    done = {"lab1": 0, "local": 0, victim.name: 0}
    at_kill: dict[str, int] = {}

    def progress(event):
        if event.kind == "trial_done":
            done[event.data.get("host")] += 1
        if event.kind == "trial_done" and event.data.get("host") == victim.name and not killed:
            at_kill.update(done)
            kill(victim)  # SIGKILL to the whole host, as a machine that dies mid-run
            killed.append(event.message)

    scenario = from_flags(["bare"], ["hello"], duration=1.0, warmup=0.3, repeat=4)
    fleet_dir = run_fleet(scenario, pick(["lab1", "lab2", "local"], hosts_file), tmp_path, progress, ["test"])
    assert killed, "the victim never finished a trial"
    assert min(at_kill["lab1"], at_kill["local"]) < 4, f"the others had finished before the kill: {at_kill}"
    fleet = json.loads((fleet_dir / "fleet.json").read_text())
    status = {host["name"]: host for host in fleet["hosts"]}
    assert status["lab2"]["status"] == "failed" and "connection" in status["lab2"]["error"], status["lab2"]
    # The others ran every trial and came home. (On a machine this busy a 1 s trial can fail on its
    # own, "no request succeeded"; that makes a host "incomplete", never "failed".)
    assert {status["lab1"]["status"], status["local"]["status"]} <= {"complete", "incomplete"}, status
    assert fleet["status"] == "incomplete"
    for name in ("lab1", "local"):
        run = json.loads((fleet_dir / name / "run.json").read_text())
        assert run["status"] == "complete" and len(run["trials"]) == 4, (name, run["status"], run["trials"])
        assert sum(t["status"] == "ok" for t in run["trials"]) >= 3, [t["error"] for t in run["trials"]]
    html = write_fleet_report(fleet_dir).read_text()
    assert "host lab2" in html and "failed" in html
    _nothing_running([hosts[0]])
