"""Fleet runs and split runs against real hosts made on this machine (tests/testhosts.py): containers
with their own sshd and dockerd on an internal network, named in an Ansible inventory with a group
`labs`. lab1 is reached as `lab` and runs as root through become (sudo); lab2's sshd listens on
port 2222. Ansible (ansible-runner) installs layerbench on each host, runs there and brings the run
folders home.

The test-host image with layerbench's dependencies already installed is made once and found by its
content hash afterwards (tests/testhost_image.py: build_ready_image), so a run installs only
layerbench's own wheel. The hosts are started once for the module; the last tests kill one of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.events import TrialDone, TrialStarted
from tests.conftest import require
from tests.testhost_image import build_image, build_ready_image, image_size_bytes, image_tag
from tests.testhosts import kill, start_hosts, write_inventory

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.xdist_group("testhosts")]  # one build of the hosts

ROOT = Path(__file__).resolve().parents[2]
BENCH = [sys.executable, "-m", "bench"]
QUICK = ["--setups", "bare", "--workloads", "hello", "--duration", "1", "--warmup", "0.3"]


@pytest.fixture(scope="session")
def testhost_image():
    """The test-host image with layerbench's dependencies, built once (cached by content afterwards)."""
    require(shutil.which("ssh") is not None, "the OpenSSH client is missing (apt-get install openssh-client)")
    daemon = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    require(bool(daemon), "no Docker daemon answers (run: scripts/host-setup.sh)")
    try:
        import ansible_runner  # noqa: F401
    except ImportError:
        require(False, "ansible-runner is missing (pip install -e '.[fleet]')")
    if image_size_bytes(image_tag()) is None:
        require(os.geteuid() == 0, "building the test-host image needs root")
        require(shutil.which("debootstrap") is not None, "debootstrap is missing (apt-get install debootstrap)")
    return build_ready_image(build_image()).tag


@pytest.fixture(scope="module")
def lab(testhost_image, tmp_path_factory):
    """Two hosts with their own Docker engine in group `labs` of an inventory."""
    with start_hosts(2, docker=True, ports={"lab2": 2222}, image=testhost_image) as hosts:
        folder = tmp_path_factory.mktemp("fleet")
        yield hosts, write_inventory(hosts, folder / "inventory.yml", become={"lab1"}), folder


def _bench(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*BENCH, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "COLUMNS": "160"})


def _remote_runs(host) -> str:
    """What is left under the fleet folders of both users there (lab1 runs as root)."""
    return host.ssh("ls -A ~/.cache/layerbench/fleet/runs 2>/dev/null; sudo ls -A /root/.cache/layerbench/fleet/runs "
                    "2>/dev/null; true").stdout.strip()


def _nothing_running(hosts) -> None:
    """No layerbench process, app, container, run folder or ssh master is left on any host or here."""
    for host in hosts:
        processes = host.ssh("ps -eo args -ww", check=False).stdout.splitlines()
        ours = [line for line in processes if re.search(r"bench|python", line) and "ps -" not in line]
        assert ours == [], f"{host.name} still runs {ours}"
        assert _remote_runs(host) == "", f"{host.name} keeps run folders"
        if host.docker:
            assert host.ssh("sudo docker ps -aq").stdout.strip() == "", f"{host.name} still has containers"
    here = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    # ssh masters, or an ansible-playbook whose runner was killed (full command lines: -ww)
    masters = [line for line in here if "lb-ssh-" in line and "ps -" not in line]
    assert masters == [], f"ssh masters or Ansible outlived the run: {masters}"
    apps = [line for line in here if "from bench.app.server import main" in line and str(ROOT) in line]
    assert apps == [], f"apps left running here: {apps}"


def _fleet_dir(out: Path) -> Path:
    found = [path for path in out.iterdir() if (path / "fleet.json").exists()]
    assert len(found) == 1, list(out.iterdir())
    return found[0]


@pytest.mark.timeout(300)
def test_a_fleet_of_a_group_and_this_machine_gives_one_report_with_three_machines(lab):
    hosts, inventory, folder = lab
    out = folder / "fleet-results"
    began = time.perf_counter()
    done = _bench("run", *QUICK, "--repeat", "2", "--hosts", "labs,local", "--inventory", str(inventory),
                  "--out", str(out))
    print(f"\nfleet of lab1, lab2 and local: {time.perf_counter() - began:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "[lab1]" in done.stdout and "[lab2]" in done.stdout and "[local]" in done.stdout  # streamed, prefixed
    fleet_dir = _fleet_dir(out)
    fleet = json.loads((fleet_dir / "fleet.json").read_text())
    assert [(h["name"], h["status"]) for h in fleet["hosts"]] == [("lab1", "complete"), ("lab2", "complete"),
                                                                  ("local", "complete")]
    by_name = {h["name"]: h for h in fleet["hosts"]}
    assert by_name["lab1"]["user"] == "root"  # become, as the inventory says
    assert by_name["lab2"]["user"] == "lab" and by_name["lab2"]["target"].endswith(":2222")  # the other port
    for name, hostname in (("lab1", "lab1"), ("lab2", "lab2"), ("local", os.uname().nodename)):
        run = json.loads((fleet_dir / name / "run.json").read_text())
        assert run["status"] == "complete" and run["machine"]["hostname"] == hostname
        assert [t["status"] for t in run["trials"]] == ["ok", "ok"]
    html = (fleet_dir / "report.html").read_text()
    machines = html[html.index('id="machines"'):html.index('id="warnings"')]
    assert machines.count("<th class=\"l\">lab") == 2 and "<th class=\"l\">local</th>" in machines
    assert all(f">{name}<" in machines for name in ("lab1", "lab2", os.uname().nodename))
    shown = json.loads(_bench("show", str(fleet_dir), "--format", "json").stdout)
    assert set(shown["hosts"]) == {"lab1", "lab2", "local"}
    assert [run["name"] for run in shown["comparison"]["runs"]] == ["lab1", "lab2", "local"]
    _nothing_running(hosts)


def test_hosts_check_pings_each_host_and_says_what_runs_there(lab):
    hosts, inventory, folder = lab
    with_ghost = folder / "inventory-ghost.ini"
    with_ghost.write_text(f"ghost ansible_host={hosts[0].address} ansible_port=1 ansible_user=lab\n")
    checked = _bench("hosts", "check", "--hosts", "labs,local", "--inventory", str(inventory))
    out = checked.stdout.replace("\n", " ")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"lab1 +reachable \(lab@[0-9.]+\): python 3\.\d+\.\d+ as root", out), out
    assert re.search(r"lab2 +reachable \(lab@[0-9.]+:2222\)", out) and re.search(r"ok +bare", out), out
    assert "local  reachable (this machine)" in out
    ghost = _bench("hosts", "check", "--hosts", "ghost", "--inventory", str(with_ghost))
    said = ghost.stdout.replace("\n", " ")
    assert ghost.returncode == 1 and "ghost  unreachable" in said, said
    assert "Failed to connect to the host via ssh" in said and "port 1" in said, said  # Ansible's own reason


def _listening(host) -> set[str]:
    return {line.split()[3] for line in host.ssh("ss -ltnH").stdout.splitlines() if line.strip()}


@pytest.mark.timeout(400)
def test_a_split_run_measures_hello_from_one_host_against_another(lab, tmp_path):
    from bench.fleet.inventory import select
    from bench.fleet.orchestrate import run_fleet
    from bench.scenario import from_flags

    hosts, inventory, _ = lab
    target = hosts[1]
    before = _listening(target)
    seen: list[set[str]] = []

    def progress(event):  # while each trial's setup runs: what listens on the target
        if isinstance(event, TrialStarted) and event.host == "lab2":
            seen.append(_listening(target) - before)

    scenario = from_flags(["bare", "container"], ["hello"], duration=1.0, warmup=0.3, repeat=2)
    targets, found = select("lab2", None, inventory)
    fleet_dir = run_fleet(scenario, targets, found, tmp_path, progress, ["test"],
                          load_from=select("lab1", None, inventory)[0][0])
    fleet = json.loads((fleet_dir / "fleet.json").read_text())
    assert fleet["status"] == "complete", fleet["hosts"]
    run = json.loads((fleet_dir / "lab2" / "run.json").read_text())
    assert run["split"]["load_host"] == "lab1" and run["split"]["listen_address"] == target.address
    assert run["split"]["load_machine"]["hostname"] == "lab1"
    by_setup, calls = {}, []
    for trial in run["trials"]:
        assert trial["status"] == "ok", trial["error"]
        assert trial["load"]["requests"] > 0 and trial["load"]["notes"]["load_host"] == "lab1"
        by_setup.setdefault(trial["setup"], []).append(trial["load"]["throughput_rps"])
        calls.append(trial["load"]["notes"]["load_call_s"] - 1.3)  # beyond warm-up + duration
    assert set(by_setup) == {"bare", "container"}
    # The app (or docker-proxy) listened on the target's address and on nothing else
    assert len(seen) == 4 and all(seen), seen
    assert all(address.rsplit(":", 1)[0] == target.address for found in seen for address in found), seen
    print(f"\nsplit /hello req/s from lab1 to lab2: {by_setup}; load call beyond the trial: "
          f"{', '.join(f'{call:.3f}' for call in calls)} s")
    _nothing_running(hosts)


def test_a_split_run_with_this_machine_as_the_target(lab):
    hosts, inventory, folder = lab
    out = folder / "split-here"
    done = _bench("run", *QUICK, "--repeat", "2", "--load-from", "lab2", "--inventory", str(inventory),
                  "--out", str(out), "--no-report")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "split run: the app on this machine listens on" in done.stdout.replace("\n", " ")
    run = json.loads(next(out.glob("*/run.json")).read_text())
    gateway = run["split"]["listen_address"]  # this machine's address on the hosts' network
    assert gateway.rsplit(".", 1)[0] == hosts[0].address.rsplit(".", 1)[0] and gateway != hosts[0].address
    assert [t["status"] for t in run["trials"]] == ["ok", "ok"]
    assert all(t["load"]["notes"]["load_host"] == "lab2" for t in run["trials"])
    _nothing_running(hosts)


@pytest.mark.timeout(400)
def test_a_killed_fleet_runner_is_cleaned_up_by_bench_clean(lab, sole_cleaner):
    """A bug seen: after kill -9 of a fleet runner, fleet.json said "running" for good, the remote
    folder and /tmp/lb-ssh-* stayed, and `bench clean` said "nothing to clean"."""
    hosts, inventory, folder = lab
    out = folder / "killed"
    command = [*BENCH, "run", *QUICK, "--repeat", "30", "--hosts", "labs", "--inventory", str(inventory),
               "--out", str(out), "--no-report"]
    seen = set()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "COLUMNS": "160"}) as runner:
        try:
            for line in runner.stdout:
                seen |= {name for name in ("lab1", "lab2") if f"[{name}]" in line and "req/s" in line}
                if seen == {"lab1", "lab2"}:
                    runner.send_signal(signal.SIGKILL)  # the control host's runner dies at once
                    break
            runner.wait(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
    assert seen == {"lab1", "lab2"}
    fleet_dir = _fleet_dir(out)
    record = json.loads((fleet_dir / "fleet.json").read_text())
    assert record["status"] == "running" and Path(record["local_folder"]).is_dir()
    assert all(_remote_runs(host) == fleet_dir.name for host in hosts), [_remote_runs(host) for host in hosts]
    cleaned = _bench("clean", "--results", str(out))
    said = " ".join(cleaned.stdout.split())
    assert cleaned.returncode == 0, said + cleaned.stderr
    assert f"the run of fleet {fleet_dir.name} on lab1" in said and "on lab2" in said, said
    assert f"ssh folder {record['local_folder']}" in said, said
    record = json.loads((fleet_dir / "fleet.json").read_text())
    assert record["status"] == "incomplete" and not Path(record["local_folder"]).exists()
    assert {host["status"] for host in record["hosts"]} == {"interrupted"}
    assert all((fleet_dir / name / "run.json").is_file() for name in ("lab1", "lab2"))  # what they measured came home
    shown = _bench("show", str(fleet_dir))
    assert shown.returncode == 0 and "interrupted" in shown.stdout, shown.stdout + shown.stderr
    again = _bench("clean", "--results", str(out)).stdout  # nothing of this fleet is left to clean
    assert fleet_dir.name not in again and "ssh folder" not in again, again  # (the other worker's may be)
    _nothing_running(hosts)


@pytest.mark.timeout(400)
def test_killing_a_host_mid_run_fails_only_that_host(lab, tmp_path):
    from bench.fleet.inventory import select
    from bench.fleet.orchestrate import run_fleet
    from bench.outputs.fleet_report import write_fleet_report
    from bench.scenario import from_flags

    hosts, inventory, _ = lab
    victim = hosts[1]
    killed: list[str] = []
    done = {"lab1": 0, "local": 0, victim.name: 0}
    at_kill: dict[str, int] = {}

    def progress(event):
        if isinstance(event, TrialDone):
            done[event.host] += 1
        if isinstance(event, TrialDone) and event.host == victim.name and not killed:
            at_kill.update(done)
            kill(victim)  # SIGKILL to the whole host, as a machine that dies mid-run
            killed.append(event.message)

    scenario = from_flags(["bare"], ["hello"], duration=1.0, warmup=0.3, repeat=4)
    chosen, found = select("labs,local", None, inventory)
    fleet_dir = run_fleet(scenario, chosen, found, tmp_path, progress, ["test"])
    assert killed, "the victim never finished a trial"
    assert min(at_kill["lab1"], at_kill["local"]) < 4, f"the others had finished before the kill: {at_kill}"
    fleet = json.loads((fleet_dir / "fleet.json").read_text())
    status = {host["name"]: host for host in fleet["hosts"]}
    assert status["lab2"]["status"] == "failed", status["lab2"]
    assert "watch the run" in status["lab2"]["error"], status["lab2"]  # Ansible's reason, with the task
    assert fleet["status"] == "incomplete"
    for name in ("lab1", "local"):
        run = json.loads((fleet_dir / name / "run.json").read_text())
        assert run["status"] == "complete" and len(run["trials"]) == 4, (name, run["status"], run["trials"])
        failed = [t["error"] for t in run["trials"] if t["status"] != "ok"]
        # A host counts as complete only when no trial of it failed (on a machine this busy a 1 s
        # trial can fail on its own, "no request succeeded": that host is then "incomplete").
        assert status[name]["status"] == ("incomplete" if failed else "complete"), (name, status[name], failed)
        assert len(failed) <= 1, failed
    # The fleet's page only: the hosts' own reports (every chart of lab1 and here, ~10 s of drawing) are
    # the first test's and test_fleet_local's subject; the failed host is named by the fleet's warnings.
    html = write_fleet_report(fleet_dir, host_reports=False).read_text()
    assert "host lab2" in html and "failed" in html
    _nothing_running([hosts[0]])
