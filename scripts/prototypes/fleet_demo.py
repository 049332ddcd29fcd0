"""Prototype of issue 14's remote workflow, proved end to end against test hosts made on this machine.

    .venv/bin/python scripts/prototypes/fleet_demo.py [--hosts 2] [--no-docker] [--parts fleet,split,kill]

fleet: build a wheel of layerbench and a wheelhouse of its dependencies for the remote's Python,
       copy both to every host, install them offline into a venv there, run `bench run` there
       (bare, and container where the host has its own dockerd), stream its output line by line,
       copy the run folder home. Hosts run in parallel; every step is timed.
split: wrk on one host against the app on another host's address (that address only), beside
       the same load over loopback on one host.
kill:  the fleet run again, longer; one host is killed (docker kill) mid-run; the others complete.
Uses the system's OpenSSH client (with a master connection per host). A prototype: the real
implementation comes later; this measures what it will cost and what breaks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.results import ResultsError, load_run
from tests.testhosts import LabHost, kill, start_hosts

WHEELS, VENV, RESULTS = "lb-wheels", "lb", "lb-results"  # under the remote user's home
BENCH_ARGS = "--workloads hello --duration 2 --repeat 1 --no-report"
_RUN_LINE = re.compile(r"^run (\d{8}-\d{6}-\S+) ->")
_output_lock = threading.Lock()
_STARTED = time.monotonic()


class RemoteError(RuntimeError):
    """A remote step failed; the message names the host and the step."""


@dataclass
class HostReport:
    host: str
    status: str = "pending"  # ok | incomplete (some trials failed; folder fetched) | failed
    error: str = ""
    run_id: str = ""
    run_status: str = ""  # the fetched run.json's own status: complete, incomplete, running
    trials_ok: int = 0
    trials_failed: int = 0
    failed_at_s: float | None = None  # seconds since the demo started, to set beside killed_at_s
    steps_s: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.steps_s[name] = round(time.perf_counter() - began, 2)


def say(prefix: str, line: str) -> None:
    """One line of output, prefixed with the seconds since the demo started and where it comes from."""
    with _output_lock:
        print(f"{time.monotonic() - _STARTED:7.2f} [{prefix}] {line}", flush=True)


def ssh(host: LabHost, command: str, timeout_s: float = 600) -> str:
    """Run a shell command on the host; its stdout. RemoteError with the last stderr line on failure."""
    result = subprocess.run(host.ssh_argv(command), capture_output=True, text=True, timeout=timeout_s,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemoteError(f"{host.name}: `{command[:60]}` exited {result.returncode}: {last}")
    return result.stdout


# ---- on the control host -------------------------------------------------------------------

def remote_python(host: LabHost) -> tuple[str, str]:
    """The remote interpreter's "major.minor" and glibc "2.N": what its wheels must fit."""
    out = ssh(host, "python3 -c 'import sys, platform; print(\"%d.%d\" % sys.version_info[:2], platform.libc_ver()[1])'")
    version, glibc = out.split()
    return version, glibc


def build_wheelhouse(workdir: Path, python_version: str, glibc: str, timings: dict) -> Path:
    """layerbench's wheel plus every dependency as a wheel for that Python and glibc, pinned to ours."""
    wheelhouse = workdir / "wheelhouse"
    pip = [sys.executable, "-m", "pip", "--quiet"]
    began = time.perf_counter()
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheelhouse), str(ROOT)], check=True, capture_output=True)
    timings["wheel_s"] = round(time.perf_counter() - began, 2)
    # The same versions as this venv (pip freeze as constraints), for the remote's interpreter: pip
    # matches only the platform tags it is given, so list every manylinux level up to the remote glibc.
    constraints = workdir / "constraints.txt"
    constraints.write_text(subprocess.run([*pip, "freeze", "--exclude-editable"], check=True, capture_output=True,
                                          text=True).stdout)
    glibc_minor = int(glibc.split(".")[1])
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 4, -1)] + \
        ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    abi = "cp" + python_version.replace(".", "")
    wheel = next(wheelhouse.glob("layerbench-*.whl"))
    began = time.perf_counter()
    subprocess.run([*pip, "download", "--only-binary=:all:", "--python-version", python_version, "--implementation",
                    "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
                    *[arg for platform in platforms for arg in ("--platform", platform)],
                    "-c", str(constraints), "-d", str(wheelhouse), str(wheel)], check=True, capture_output=True)
    timings["wheelhouse_s"] = round(time.perf_counter() - began, 2)
    timings["wheelhouse_files"] = len(list(wheelhouse.glob("*.whl")))
    timings["wheelhouse_bytes"] = sum(path.stat().st_size for path in wheelhouse.glob("*.whl"))
    return wheelhouse


# ---- on each host --------------------------------------------------------------------------

def deploy(host: LabHost, wheelhouse: Path, report: HostReport) -> None:
    """Copy the wheelhouse (tar over ssh; scp -r timed beside it) and install it offline into a venv."""
    with report.step("copy_scp"):
        ssh(host, "rm -rf ~/lb-scp")
        subprocess.run(["scp", "-q", "-r", "-F", str(host.ssh_config), str(wheelhouse), f"{host.name}:lb-scp"],
                       check=True, capture_output=True)
    ssh(host, "rm -rf ~/lb-scp")
    with report.step("copy_tar"):
        with subprocess.Popen(["tar", "-C", str(wheelhouse), "-cf", "-", "."], stdout=subprocess.PIPE) as tar:
            unpack = subprocess.run(host.ssh_argv(f"rm -rf ~/{WHEELS} && mkdir ~/{WHEELS} && tar -C ~/{WHEELS} -xf -"),
                                    stdin=tar.stdout, capture_output=True, text=True)
        if unpack.returncode != 0 or tar.returncode != 0:
            raise RemoteError(f"{host.name}: copy failed: {unpack.stderr.strip()}")
    with report.step("install"):
        ssh(host, f"rm -rf ~/{VENV} && python3 -m venv ~/{VENV} && "
                  f"~/{VENV}/bin/pip install --quiet --no-index --find-links ~/{WHEELS} layerbench")


def run_remote(host: LabHost, bench_args: str, report: HostReport, on_line=lambda host, line: None) -> int:
    """`bench run` on the host, its output streamed here line by line as it comes; its exit status."""
    command = f"cd ~ && PYTHONUNBUFFERED=1 COLUMNS=110 ~/{VENV}/bin/bench run {bench_args} --out ~/{RESULTS} 2>&1"
    with report.step("run"):
        with subprocess.Popen(host.ssh_argv(command), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              text=True, bufsize=1) as process:
            for line in process.stdout:
                line = line.rstrip()
                if match := _RUN_LINE.match(line):
                    report.run_id = match.group(1)
                say(host.name, line)
                on_line(host, line)
    # 3 is bench's "finished, but some trials failed": the run folder is complete and worth fetching.
    if process.returncode not in (0, 3) or not report.run_id:
        why = "the connection was lost (host gone?)" if process.returncode == 255 else "see its output above"
        raise RemoteError(f"{host.name}: bench run exited {process.returncode}: {why}")
    return process.returncode


def fetch(host: LabHost, home: Path, report: HostReport) -> Path:
    """Copy the run folder home (tar over ssh) and load it with layerbench's own reader."""
    destination = home / host.name
    destination.mkdir(parents=True, exist_ok=True)
    with report.step("fetch"):
        with subprocess.Popen(host.ssh_argv(f"tar -C ~/{RESULTS} -cf - {shlex.quote(report.run_id)}"),
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) as remote:
            unpack = subprocess.run(["tar", "-C", str(destination), "-xf", "-"], stdin=remote.stdout,
                                    capture_output=True, text=True)
        if remote.returncode != 0 or unpack.returncode != 0:
            raise RemoteError(f"{host.name}: fetching {report.run_id} failed: {unpack.stderr.strip()}")
    record = load_run(destination / report.run_id)
    report.run_status = record.status
    report.trials_ok = len(record.ok_trials())
    report.trials_failed = sum(trial.status == "failed" for trial in record.trials)
    return destination / report.run_id


def pipeline(host: LabHost, wheelhouse: Path | None, extra_args: str, home: Path, on_line) -> HostReport:
    """deploy (unless already done), run, fetch; a failure is recorded against this host only."""
    report = HostReport(host.name)
    try:
        if wheelhouse is not None:
            deploy(host, wheelhouse, report)
        status = run_remote(host, bench_args_for(host, extra_args), report, on_line)
        fetch(host, home, report)
        report.status = "ok" if status == 0 else "incomplete"
    except (RemoteError, ResultsError, subprocess.SubprocessError, OSError) as error:
        report.status, report.error = "failed", str(error)
        report.failed_at_s = round(time.monotonic() - _STARTED, 2)
        say(host.name, f"FAILED: {error}")
    return report


def in_parallel(hosts: list[LabHost], wheelhouse: Path | None, extra_args: str, home: Path,
                on_line=lambda host, line: None) -> list[HostReport]:
    """The pipeline on every host at once, one thread per host."""
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        futures = [pool.submit(pipeline, host, wheelhouse, extra_args, home, on_line) for host in hosts]
        return [future.result() for future in futures]


def bench_args_for(host: LabHost, extra: str = "") -> str:
    """The brief's run; container as well where the host has its own engine. `extra` flags win."""
    setups = "bare,container" if host.docker else "bare"
    return f"--setups {setups} {BENCH_ARGS} {extra}".strip()


# ---- the parts -----------------------------------------------------------------------------

def part_fleet(hosts: list[LabHost], home: Path, facts: dict) -> None:
    version, glibc = remote_python(hosts[0])
    facts["remote_python"], facts["remote_glibc"] = version, glibc
    facts["ssh_true_s"] = ssh_roundtrips(hosts[0])
    with tempfile.TemporaryDirectory(prefix="layerbench-fleet-") as workdir:
        wheelhouse = build_wheelhouse(Path(workdir), version, glibc, facts)
        began = time.perf_counter()
        reports = in_parallel(hosts, wheelhouse, "", home / "fleet")
        facts["fleet_wall_s"] = round(time.perf_counter() - began, 2)
    facts["fleet"] = [asdict(report) for report in reports]


def part_kill(hosts: list[LabHost], home: Path, facts: dict, victim_after_s: float = 4.0) -> None:
    """Both hosts run a longer scenario; the last host is killed once its first trial is reported."""
    victim = hosts[-1]
    first_trial = threading.Event()

    def watch(host: LabHost, line: str) -> None:
        if host is victim and re.match(r"^\s+\S.*: [\d,]+ req/s", line):
            first_trial.set()

    def killer() -> None:
        if first_trial.wait(timeout=300):
            time.sleep(victim_after_s)
            say("demo", f"docker kill {victim.container}")
            facts["killed_at_s"] = round(time.monotonic() - _STARTED, 2)  # when `docker kill` was called
            kill(victim)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    began = time.perf_counter()
    reports = in_parallel(hosts, None, "--repeat 3", home / "kill", watch)
    facts["kill_wall_s"] = round(time.perf_counter() - began, 2)
    facts["kill"] = [asdict(report) for report in reports]


def ssh_roundtrips(host: LabHost, count: int = 10) -> dict:
    """Median seconds of `ssh host true` through the master connection and with a new one each time."""
    def median_s(*options: str) -> float:
        times = []
        for _ in range(count):
            began = time.perf_counter()
            subprocess.run(host.ssh_argv("true", *options), check=True, capture_output=True, stdin=subprocess.DEVNULL)
            times.append(time.perf_counter() - began)
        return round(statistics.median(times), 4)
    return {"with_master": median_s(), "new_connection": median_s("-o", "ControlMaster=no", "-o", "ControlPath=none")}


def part_split(hosts: list[LabHost], home: Path, facts: dict, seconds: int = 5, rounds: int = 5) -> None:
    """wrk on hosts[0] against the app on hosts[1]'s address, alternating with loopback on hosts[1]."""
    client, server = hosts[0], hosts[1]
    # The app listens on the server's address on the test network and nowhere else; the loopback app
    # beside it is the reference. Both on CPU 1, wrk on CPU 0, as the local scenarios pin them.
    pids = ssh(server, " ; ".join(
        f"nohup taskset -c 1 ~/{VENV}/bin/python -m bench.app --host {address} --port {port} "
        f"</dev/null >/tmp/app-{port}.log 2>&1 & echo $!" for address, port in ((server.address, 8080),
                                                                                ("127.0.0.1", 8081)))).split()
    try:
        facts["split_listening"] = wait_listening(server, {f"{server.address}:8080", "127.0.0.1:8081"})
        facts["split_not_on_loopback"] = ssh(server, "python3 -c \"import socket\ntry:\n socket.create_connection("
                                                     "('127.0.0.1', 8080), 2); print('reachable')\nexcept OSError as e:"
                                                     " print(type(e).__name__)\"").strip()
        wrk(client, f"http://{server.address}:8080/hello", 1)  # warm-up, discarded
        wrk(server, "http://127.0.0.1:8081/hello", 1)
        runs = {"split": [], "loopback": []}
        for _ in range(rounds):  # alternate, so drift on this shared machine hits both alike
            runs["split"].append(wrk(client, f"http://{server.address}:8080/hello", seconds))
            runs["loopback"].append(wrk(server, "http://127.0.0.1:8081/hello", seconds))
    finally:
        ssh(server, f"kill {' '.join(pids)}")
    facts["split"] = {path: {"rps": [run[0] for run in values], "p99_ms": [run[1] for run in values],
                             "median_rps": statistics.median(run[0] for run in values),
                             "median_p99_ms": round(statistics.median(run[1] for run in values), 3)}
                      for path, values in runs.items()}
    # Each round's split/loopback pair ran back to back: their ratio cancels the drift between rounds.
    ratios = [split[0] / loop[0] for split, loop in zip(runs["split"], runs["loopback"])]
    facts["split_ratio_rps"] = {"per_round": [round(ratio, 3) for ratio in ratios],
                                "median": round(statistics.median(ratios), 3)}
    facts["split_command"] = f"taskset -c 0 wrk -t1 -c8 -d{seconds}s --latency URL (app: taskset -c 1)"


def wait_listening(host: LabHost, wanted: set[str], timeout_s: float = 20) -> list[str]:
    """Until every address:port in `wanted` is a listening socket on the host; those `ss` lines."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [line.split()[3] for line in ssh(host, "ss -ltnH").splitlines() if line.strip()]
        if wanted <= set(lines):
            return sorted(line for line in lines if line.endswith((":8080", ":8081")))
        if time.monotonic() > deadline:
            raise RemoteError(f"{host.name}: the apps did not listen on {sorted(wanted)} (listening: {lines})")
        time.sleep(0.2)


def wrk(host: LabHost, url: str, seconds: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) of one wrk run from the host."""
    out = ssh(host, f"taskset -c 0 wrk -t1 -c8 -d{seconds}s --latency {url}", timeout_s=seconds + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
    return rps, round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


PARTS = {"fleet": part_fleet, "split": part_split, "kill": part_kill}


def summary(facts: dict) -> list[str]:
    lines = [f"hosts up in {facts['hosts_up_s']} s; wheel {facts.get('wheel_s')} s, wheelhouse "
             f"{facts.get('wheelhouse_s')} s ({facts.get('wheelhouse_files')} wheels, "
             f"{(facts.get('wheelhouse_bytes') or 0) / 1e6:.1f} MB); ssh true {facts.get('ssh_true_s')}"]
    for part in ("fleet", "kill"):
        for report in facts.get(part, []):
            steps = ", ".join(f"{name} {seconds} s" for name, seconds in report["steps_s"].items())
            lines.append(f"{part} {report['host']}: {report['status']} (run {report['run_status'] or '-'}, "
                         f"{report['trials_ok']} trials ok, {report['trials_failed']} failed) {steps}"
                         + (f" -- {report['error']}" if report["error"] else ""))
    for path, figures in facts.get("split", {}).items():
        lines.append(f"split {path}: median {figures['median_rps']:.0f} req/s, p99 {figures['median_p99_ms']} ms "
                     f"(runs: {', '.join(f'{rps:.0f}' for rps in figures['rps'])})")
    if "split_ratio_rps" in facts:
        lines.append(f"split/loopback req/s per round: {facts['split_ratio_rps']['per_round']}, "
                     f"median {facts['split_ratio_rps']['median']}; listening: {facts['split_listening']}, "
                     f"127.0.0.1:8080 on the server: {facts['split_not_on_loopback']}")
    if "killed_at_s" in facts:
        failed = [report["failed_at_s"] for report in facts.get("kill", []) if report["failed_at_s"]]
        lines.append(f"kill at {facts['killed_at_s']} s; failure seen at {failed} s")
    lines.append(f"teardown {facts.get('teardown_s')} s")
    return lines


def as_expected(facts: dict) -> bool:
    """Every fleet host's run came home complete; in the kill part the victim failed, the others did not."""
    fleet_ok = all(report["run_status"] == "complete" for report in facts.get("fleet", []))
    kill = facts.get("kill", [])
    kill_ok = not kill or (kill[-1]["status"] == "failed" and all(r["run_status"] == "complete" for r in kill[:-1]))
    return fleet_ok and kill_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--no-docker", action="store_true", help="hosts without their own dockerd (bare only)")
    parser.add_argument("--parts", default="fleet,split,kill", help="any of fleet, split, kill, in order")
    parser.add_argument("--home", type=Path, help="where run folders land (default results/fleet-demo-<time>)")
    parser.add_argument("--split-rounds", type=int, default=5, help="split/loopback pairs of wrk runs")
    parser.add_argument("--split-seconds", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    parts = args.parts.split(",")
    home = args.home or ROOT / "results" / f"fleet-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    facts: dict = {"parts": parts}
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill PID` removes the hosts like Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.perf_counter()
    try:
        with start_hosts(args.hosts, docker=not args.no_docker, progress=lambda m: say("demo", m)) as hosts:
            facts["hosts_up_s"] = round(time.perf_counter() - began, 2)
            facts["hosts"] = [{"name": h.name, "address": h.address, "docker": h.docker} for h in hosts]
            for part in parts:
                if part == "split":
                    part_split(hosts, home, facts, seconds=args.split_seconds, rounds=args.split_rounds)
                else:
                    PARTS[part](hosts, home, facts)
            began = time.perf_counter()
    except KeyboardInterrupt:
        print("interrupted; the hosts are removed")
        return 130
    facts["teardown_s"] = round(time.perf_counter() - began, 2)
    home.mkdir(parents=True, exist_ok=True)
    (home / "fleet-demo.json").write_text(json.dumps(facts, indent=2))
    print("\n".join(summary(facts)) + f"\nfacts: {home / 'fleet-demo.json'}")
    return 0 if as_expected(facts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
