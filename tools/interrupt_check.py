"""Measurement check, run by a developer: does Ctrl-C or SIGTERM at any moment leave anything
behind? Tried for real, phase by phase.

Runs `bench run --setups container --workloads startup --repeat 20` (and a VM variant) and signals
the runner at one phase per try, watched from outside: the engine's events (container created,
started, killed by the stop), the runner's output (preparing), QEMU appearing, the guest's first
HTTP 200, a trial landing in run.json. SIGINT and SIGTERM alternate; which start of the run is hit
varies. After each try it counts what remains: containers of that runner (`docker ps -a`),
docker-proxy for their ports, QEMUs of that runner, VM runtime dirs and layerbench temp dirs.

    .venv/bin/python -m tools.interrupt_check [--setups container,vm] [--tries 20] [--phases a,b]
    .venv/bin/python -m tools.interrupt_check --setups bare --tries 1   # no engine: the check itself

`bare` (no engine) has two phases, prepare and random; its app processes are watched like the rest.

Exits 1 when any try left something behind (or did not exit 130); prints one line per try and a
table of clean tries per phase.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

BENCH = str(Path(sys.executable).with_name("bench"))
CONTAINER_PHASES = ("prepare", "create", "start", "readiness", "load", "stop", "random")
VM_PHASES = ("prepare", "launch", "boot", "readiness", "load", "stop", "random")
BARE_PHASES = ("prepare", "random")
RANDOM_S = {"container": 8.0, "vm": 15.0, "bare": 3.0}  # the latest moment a random signal comes
RUNTIME_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerbench" / "run"


class Try:
    """One `bench run` subprocess and what is watched about it."""

    def __init__(self, setup: str, phase: str, out: Path):
        workload = "hello" if phase in ("load", "random") else "startup"
        args = [BENCH, "run", "--setups", setup, "--workloads", workload, "--repeat", "20", "--out", str(out),
                "--no-report"]
        if workload == "hello":
            args += ["--duration", "1.5", "--warmup", "0.2"]
        self.out = out
        self.log = out / "stdout.txt"
        out.mkdir(parents=True, exist_ok=True)
        self.runtime_before = set(RUNTIME_DIR.glob("layerbench-vm-*")) if RUNTIME_DIR.is_dir() else set()
        self.temp = out / "tmp"  # the runner's own TMPDIR: whatever temp file it leaves is found here
        self.temp.mkdir()
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TMPDIR": str(self.temp)}
        with open(self.log, "wb") as sink:
            # A shell's background job inherits SIGINT ignored, and Python then never turns it into
            # KeyboardInterrupt: give the runner the default disposition a terminal would.
            self.popen = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.began = time.monotonic()
        self.events: queue.Queue = queue.Queue()
        self.ports: set[int] = set()
        self.qemu_pids: set[int] = set()
        self.children: list[psutil.Process] = []  # the runner's descendants when the signal went
        self._stream = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def watch_engine(self) -> None:
        """Engine events of this runner's containers, into self.events; ports noted at create."""
        import docker

        client = docker.from_env(timeout=30)
        self._stream = client.events(decode=True, filters={"type": "container",
                                                           "label": f"layerbench.runner-pid={self.popen.pid}"})

        def pump():
            try:
                for event in self._stream:
                    action = event.get("Action") or event.get("status")
                    if action == "create":
                        self._note_ports(client, event.get("id"))
                    self.events.put(action)
            except Exception:  # the stream was closed: this try is over
                pass
        threading.Thread(target=pump, daemon=True).start()

    def _note_ports(self, client, container_id) -> None:
        try:
            bindings = client.api.inspect_container(container_id)["HostConfig"]["PortBindings"] or {}
        except Exception:
            return
        self.ports.update(int(b["HostPort"]) for binds in bindings.values() for b in binds or [])

    def stop_watching(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def qemus(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if any(arg.startswith(f"layerbench-vm-{self.popen.pid}-") for arg in cmdline):
                found.append(process)
                self.qemu_pids.add(process.pid)
        return found

    def note_children(self) -> None:
        try:
            self.children = psutil.Process(self.popen.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            self.children = []

    def trials_recorded(self) -> int:
        for run_json in self.out.glob("*/run.json"):
            try:
                return run_json.read_text().count('"trial_id"')
            except OSError:
                return 0
        return 0


def wait_until(predicate, timeout_s: float, running: subprocess.Popen):
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up and running.poll() is None:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    return None


def wait_event(attempt: Try, action: str, nth: int, timeout_s: float = 120) -> bool:
    """True once the nth `action` event of the runner's containers arrived."""
    seen = 0
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up and attempt.popen.poll() is None:
        try:
            if attempt.events.get(timeout=0.05) == action:
                seen += 1
                if seen == nth:
                    return True
        except queue.Empty:
            continue
    return False


def guest_answers(attempt: Try) -> bool:
    for qemu in attempt.qemus():
        try:
            forward = next(arg for arg in qemu.cmdline() if "hostfwd=" in arg)
            port = int(forward.split("hostfwd=tcp:127.0.0.1:")[1].split("-")[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.3) as reply:
                if reply.status == 200:
                    return True
        except Exception:
            continue
    return False


def reach_container_phase(attempt: Try, phase: str, nth: int) -> bool:
    """Block until the moment of `phase` in the nth start; False if the run never got there."""
    if phase == "prepare":
        return bool(wait_until(lambda: "preparing" in attempt.output(), 60, attempt.popen))
    if phase == "random":
        time.sleep(random.uniform(0.3, RANDOM_S["container"]))
        return attempt.popen.poll() is None
    action = {"create": "create", "start": "start", "readiness": "start", "load": "start", "stop": "kill"}[phase]
    if not wait_event(attempt, action, nth):
        return False
    if phase == "readiness":
        time.sleep(random.uniform(0.0, 0.1))
    elif phase == "load":
        time.sleep(random.uniform(0.4, 1.5))
    return True


def reach_vm_phase(attempt: Try, phase: str, nth: int) -> bool:
    if phase == "prepare":
        return bool(wait_until(lambda: "preparing" in attempt.output(), 60, attempt.popen))
    if phase == "random":
        time.sleep(random.uniform(0.3, RANDOM_S["vm"]))
        return attempt.popen.poll() is None
    if phase == "stop":
        return bool(wait_until(lambda: attempt.trials_recorded() >= nth, 240, attempt.popen))
    for _ in range(nth - 1):  # let earlier starts pass: wait for each of their QEMUs to go
        wait_until(attempt.qemus, 120, attempt.popen)
        wait_until(lambda: not attempt.qemus(), 120, attempt.popen)
    if not wait_until(attempt.qemus, 120, attempt.popen):
        return False
    if phase == "boot":
        time.sleep(random.uniform(0.3, 2.0))
    elif phase in ("readiness", "load"):
        if not wait_until(lambda: guest_answers(attempt), 120, attempt.popen):
            return False
        if phase == "load":
            time.sleep(random.uniform(0.4, 1.5))
    return True


def reach_bare_phase(attempt: Try, phase: str, nth: int) -> bool:
    if phase == "prepare":
        return bool(wait_until(lambda: "preparing" in attempt.output(), 60, attempt.popen))
    time.sleep(random.uniform(0.3, RANDOM_S["bare"]))
    return attempt.popen.poll() is None


def leftovers(attempt: Try, setup: str) -> list[str]:
    """What this try's runner left behind (after it exited)."""
    found = [f"process {child.pid} ({child.name()})" for child in attempt.children if _alive(child)]
    if setup == "bare":
        return found + [f"temp {path.name}" for path in attempt.temp.iterdir()]
    listed = subprocess.run(["docker", "ps", "-a", "--filter", f"label=layerbench.runner-pid={attempt.popen.pid}",
                             "--format", "{{.Names}} ({{.Status}})"], capture_output=True, text=True, timeout=60)
    found += [f"container {line}" for line in listed.stdout.splitlines()]
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "docker-proxy" and any(
                cmdline[i + 1] in {str(port) for port in attempt.ports}
                for i, arg in enumerate(cmdline[:-1]) if arg == "-host-port"):
            found.append(f"docker-proxy pid {process.pid}")
    found += [f"QEMU pid {process.pid}" for process in attempt.qemus()]
    found += [f"VM runtime dir {entry.name}" for entry in _runtime_dirs_left(attempt)]
    found += [f"temp {path.name}" for path in attempt.temp.iterdir()]
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _runtime_dirs_left(attempt: Try) -> list[Path]:
    """VM runtime dirs this try's runner left: its QEMU's pidfile, or none at all and still there
    a few seconds later (another user's QEMU starting right now writes its pidfile meanwhile)."""
    if not RUNTIME_DIR.is_dir():
        return []
    new = set(RUNTIME_DIR.glob("layerbench-vm-*")) - attempt.runtime_before
    suspects = [entry for entry in new if _read_pid(entry / "qemu.pid") in (None, *attempt.qemu_pids)]
    if any(_read_pid(entry / "qemu.pid") is None for entry in suspects):
        time.sleep(5)
    return [entry for entry in suspects if entry.exists() and _read_pid(entry / "qemu.pid") in (None, *attempt.qemu_pids)]


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def remove(attempt: Try, found: list[str]) -> None:
    """Clean up what a try left, so the next try starts clean (only this runner's things)."""
    subprocess.run(f"docker ps -aq --filter label=layerbench.runner-pid={attempt.popen.pid} | xargs -r docker rm -f",
                   shell=True, capture_output=True, timeout=120)
    for process in [*attempt.qemus(), *(child for child in attempt.children if _alive(child))]:
        process.kill()


def one_try(setup: str, phase: str, index: int, root: Path) -> tuple[bool, str]:
    """Run, signal at the phase, wait for the exit; (clean, one line)."""
    signum = (signal.SIGINT, signal.SIGTERM)[index % 2]
    nth = 1 + index % 3
    attempt = Try(setup, phase, root / f"{setup}-{phase}-{index}")
    if setup == "container":
        attempt.watch_engine()
    reach = {"container": reach_container_phase, "vm": reach_vm_phase, "bare": reach_bare_phase}[setup]
    reached = reach(attempt, phase, nth)
    attempt.qemus()  # note the QEMU pids alive right now
    attempt.note_children()
    sent_at = time.monotonic() - attempt.began
    if attempt.popen.poll() is None:
        attempt.popen.send_signal(signum)
    try:
        status = attempt.popen.wait(timeout=120)
    except subprocess.TimeoutExpired:
        attempt.popen.kill()
        status = attempt.popen.wait()
    attempt.stop_watching()
    found = leftovers(attempt, setup)
    if found:
        remove(attempt, found)
    # 130: bench handled it. Killed by the signal itself: it came while Python was still starting,
    # before bench could install a handler, and is clean only if no run had begun.
    before_start = status == -signum and not any(attempt.out.glob("*/run.json"))
    clean = reached and (status == 130 or before_start) and not found
    line = (f"{setup:9} {phase:9} try {index + 1:2}  {signal.Signals(signum).name:7} start {nth} at {sent_at:5.2f} s "
            f"exit {status:3}  " + ("clean" + (" (before bench started)" if before_start else "") if clean else
                                    "NOT CLEAN: " + ", ".join(
                (["phase not reached"] if not reached else []) + found or [f"exit {status}"])))
    return clean, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="container,vm")
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--phases", default=None, help="comma-separated; default: every phase of each setup")
    args = parser.parse_args(argv)
    random.seed(20261129)
    table = []
    with tempfile.TemporaryDirectory(prefix="interrupt-check-") as folder:
        for setup in args.setups.split(","):
            every = {"container": CONTAINER_PHASES, "vm": VM_PHASES, "bare": BARE_PHASES}[setup]
            phases = args.phases.split(",") if args.phases else every
            for phase in phases:
                outcomes = []
                for index in range(args.tries):
                    clean, line = one_try(setup, phase, index, Path(folder))
                    print(line, flush=True)
                    outcomes.append(clean)
                table.append((setup, phase, sum(outcomes), len(outcomes)))
    print("\nsetup     phase      clean / tries")
    for setup, phase, clean, total in table:
        print(f"{setup:9} {phase:10} {clean:2} / {total}")
    return 0 if all(clean == total for *_, clean, total in table) else 1


if __name__ == "__main__":
    sys.exit(main())
