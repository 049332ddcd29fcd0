"""Faults during a real run: a setup killed mid-trial, no Docker daemon, a taken port, an unwritable
results folder, Ctrl-C / SIGTERM / SIGKILL of the runner. Each must give one clear line naming the
trial, record the failure in run.json, let the other trials go on, and leave nothing running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench import results
from bench.app.command import APP_SIGNATURE
from bench.events import TrialFailed
from bench.setups.container import ContainerSetup
from tests.conftest import require

pytestmark = pytest.mark.integration

BENCH = str(Path(sys.executable).with_name("bench"))
QUICK = ["--workloads", "hello", "--warmup", "0.2", "--no-report"]
ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}  # one line stays one line in the captured output


class Run:
    """A `bench run` subprocess, its output in files (a full pipe would stall it)."""

    def __init__(self, args: list[str], folder: Path, env: dict | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = folder / "stdout.txt", folder / "stderr.txt"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.popen = subprocess.Popen([BENCH, *args], stdout=out, stderr=err, env=env or ENV,
                                          stdin=subprocess.DEVNULL)
        self.pid = self.popen.pid
        self.app_pids: set[int] = set()

    def finish(self, timeout_s: float = 90) -> int:
        """Wait for the exit, noting every bare app it spawns meanwhile."""
        give_up = time.monotonic() + timeout_s
        while self.popen.poll() is None and time.monotonic() < give_up:
            self.apps()
            time.sleep(0.05)
        return self.wait(max(1.0, give_up - time.monotonic()))

    def wait(self, timeout_s: float = 90) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def apps(self) -> list[psutil.Process]:
        """Bare apps this run has spawned (remembered, to prove later that they are gone)."""
        found = []
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        for child in children:
            try:
                if APP_SIGNATURE in " ".join(child.cmdline()):
                    found.append(child)
                    self.app_pids.add(child.pid)
            except psutil.Error:
                pass
        return found


def wait_for(predicate, timeout_s: float, what: str):
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
            probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return probe.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def app_port(process: psutil.Process) -> int:
    cmdline = process.cmdline()
    return int(cmdline[cmdline.index("--port") + 1])


def containers_of(runner_pid: int) -> list[str]:
    """`docker ps -a` names of containers a runner started (by its pid label), running or not."""
    listed = subprocess.run(["docker", "ps", "-a", "--filter", f"label=layerbench.runner-pid={runner_pid}",
                             "--format", "{{.Names}}"], capture_output=True, text=True, timeout=30)
    return listed.stdout.split()


def qemus_of(runner_pid: int) -> list[psutil.Process]:
    """QEMU processes a runner started: their -name is layerbench-vm-<runner pid>-<port>."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and "qemu-system" in os.path.basename(cmdline[0]) and any(
                arg.startswith(f"layerbench-vm-{runner_pid}-") for arg in cmdline):
            found.append(process)
    return found


def hostfwd_port(qemu: psutil.Process) -> int:
    try:
        forward = next(arg for arg in qemu.cmdline() if "hostfwd=" in arg)
    except (psutil.Error, StopIteration):
        return 0
    return int(forward.split("hostfwd=tcp:127.0.0.1:")[1].split("-")[0])


def assert_nothing_left(run: Run) -> None:
    alive = [pid for pid in run.app_pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert alive == [], f"bare apps still running: {alive}"
    if ContainerSetup.check() is None:
        assert containers_of(run.pid) == []
    assert qemus_of(run.pid) == []
    assert run.popen.poll() is not None


def run_dir_of(out: Path) -> Path:
    (run_dir,) = [path for path in out.iterdir() if (path / "run.json").is_file()]
    return run_dir


def docker_or_skip() -> None:
    require(ContainerSetup.check() is None, f"container setup unavailable: {ContainerSetup.check()}")


def vm_or_skip() -> None:
    from bench.setups.vm import VMSetup

    require(VMSetup.check() is None, f"vm setup unavailable: {VMSetup.check()}")


def failure_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if " failed: " in line]


# ---- a setup killed mid-trial -------------------------------------------------------------------

def test_bare_app_killed_mid_trial_fails_that_trial_only(tmp_path):
    run = Run(["run", "--setups", "bare", "--duration", "2", "--repeat", "2", "--out", str(tmp_path / "r"), *QUICK],
              tmp_path)
    (first,) = wait_for(run.apps, 20, "the first bare app")
    wait_for(lambda: answers(app_port(first)), 15, "the app to answer")
    time.sleep(0.8)  # into the measured window
    first.kill()
    assert run.finish() == 3, run.stdout + run.stderr  # ExitStatus.INCOMPLETE: a trial failed, the run finished
    (line,) = failure_lines(run.stdout)
    assert line.startswith("bare/hello/r0 failed: the setup stopped answering during the trial"), line
    record = results.load_run(run_dir_of(tmp_path / "r"))
    by_id = {trial.trial_id: trial for trial in record.trials}
    assert by_id["bare--hello--r0"].status == "failed" and "stopped answering" in by_id["bare--hello--r0"].error
    assert by_id["bare--hello--r1"].status == "ok" and by_id["bare--hello--r1"].load.errors == {}
    assert record.status == "complete"
    assert len(run.app_pids) == 2
    assert_nothing_left(run)


@pytest.mark.docker
def test_container_killed_mid_trial_fails_that_trial_and_bare_goes_on(tmp_path):
    docker_or_skip()
    run = Run(["run", "--setups", "container,bare", "--duration", "2", "--repeat", "1", "--out", str(tmp_path / "r"),
               *QUICK], tmp_path)
    (name,) = wait_for(lambda: containers_of(run.pid), 30, "the container")
    wait_for(lambda: "container" in json.dumps(_progress(run)), 30, "the container trial")
    time.sleep(0.8)
    subprocess.run(["docker", "kill", name], check=True, capture_output=True, timeout=30)
    assert run.wait() == 3, run.stdout + run.stderr
    (line,) = failure_lines(run.stdout)
    assert line.startswith("container/hello/r0 failed: the setup stopped answering"), line
    record = results.load_run(run_dir_of(tmp_path / "r"))
    statuses = {trial.setup: (trial.status, trial.error) for trial in record.trials}
    assert statuses["container"][0] == "failed" and "stopped answering" in statuses["container"][1]
    assert statuses["bare"] == ("ok", None)
    assert_nothing_left(run)


def _progress(run: Run) -> list[str]:
    """Lines the run printed so far that name a started trial (the progress bar is transient)."""
    return [line for line in run.stdout.splitlines() if line.strip()]


@pytest.mark.qemu
def test_qemu_killed_mid_trial_fails_that_trial_and_bare_goes_on(tmp_path):
    vm_or_skip()
    run = Run(["run", "--setups", "vm,bare", "--duration", "2", "--repeat", "1", "--out", str(tmp_path / "r"),
               *QUICK], tmp_path)
    # The first QEMU may be prepare's KVM probe boot: wait for the one whose guest app answers.
    (qemu,) = wait_for(lambda: [q for q in qemus_of(run.pid) if answers(hostfwd_port(q))], 150, "the guest app")
    time.sleep(1.0)
    qemu.kill()
    assert run.wait(120) == 3, run.stdout + run.stderr
    (line,) = failure_lines(run.stdout)
    assert line.startswith("vm[") or line.startswith("vm/"), line
    assert "stopped answering" in line or "QEMU exited" in line, line
    record = results.load_run(run_dir_of(tmp_path / "r"))
    statuses = {trial.setup: trial.status for trial in record.trials}
    assert statuses == {"vm": "failed", "bare": "ok"}
    assert_nothing_left(run)


# ---- engines and resources missing at start ------------------------------------------------------

@pytest.mark.docker
def test_docker_unreachable_skips_the_container_with_one_line_and_measures_bare(tmp_path):
    env = {**ENV, "DOCKER_HOST": "unix:///nonexistent.sock"}
    run = Run(["run", "--setups", "bare,container", "--duration", "1", "--repeat", "1", "--out",
               str(tmp_path / "r"), *QUICK], tmp_path, env=env)
    # Not a failed trial (3), but a setup asked for by name was not measured: ExitStatus.SKIPPED.
    assert run.wait() == 4, run.stdout + run.stderr
    skips = [line for line in run.stdout.splitlines() if line.startswith("skipping container")]
    assert len(skips) == 1 and "unix:///nonexistent.sock" in skips[0], run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    record = results.load_run(run_dir_of(tmp_path / "r"))
    assert [(t.setup, t.status) for t in record.trials] == [("bare", "ok")]
    assert record.skipped[0].setup == "container" and "nonexistent.sock" in record.skipped[0].reason
    assert record.status == "complete"


def test_a_run_succeeds_while_other_listeners_hold_ports(tmp_path):
    # Hold 200 loopback ports: the setups ask the kernel for a free port, so they never collide.
    held = []
    try:
        for _ in range(200):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            held.append(listener)
        run = Run(["run", "--setups", "bare", "--duration", "1", "--repeat", "2", "--out", str(tmp_path / "r"),
                   *QUICK], tmp_path)
        assert run.finish() == 0, run.stdout + run.stderr
        held_ports = {listener.getsockname()[1] for listener in held}
        record = results.load_run(run_dir_of(tmp_path / "r"))
        assert all(trial.status == "ok" for trial in record.trials)
        assert not held_ports & {int(trial.facts.log.split("bare-")[1].split(".")[0]) for trial in record.trials}
    finally:
        for listener in held:
            listener.close()
    assert_nothing_left(run)


def test_the_app_refuses_a_taken_port_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = subprocess.run([BENCH, "app", "--port", str(port)], capture_output=True, text=True, timeout=30,
                                 env=ENV)
    assert outcome.returncode == 1
    assert outcome.stderr.strip().splitlines() == [f"bench app: cannot listen on 127.0.0.1:{port}: "
                                                   f"Address already in use"]


def test_a_port_taken_between_pick_and_bind_fails_the_trial_with_the_apps_reason(tmp_path, monkeypatch):
    """The race the kernel's free port cannot exclude: the bare app then cannot bind; the trial says so."""
    import bench.setups.bare as bare
    from bench.runner import Runner
    from bench.scenario import from_flags

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(bare, "free_port", lambda *address: port)
        events = []
        scenario = from_flags(["bare"], ["hello"], duration=0.5, warmup=0.0, repeat=1)
        run_dir = Runner(scenario, tmp_path, progress=events.append).run()
    record = results.load_run(run_dir)
    (trial,) = record.trials
    assert trial.status == "failed"
    assert "the app exited before answering /health" in trial.error and "Address already in use" in trial.error
    (failed,) = [event for event in events if isinstance(event, TrialFailed)]
    assert failed.message.startswith("bare/hello/r0 failed: ") and "\n" not in failed.message


@pytest.mark.docker
def test_a_taken_host_port_fails_the_container_trial_with_one_line(tmp_path, monkeypatch):
    docker_or_skip()
    import bench.setups.container.docker_setup as container
    from bench.runner import Runner
    from bench.scenario import from_flags

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(container, "free_port", lambda *address: port)
        scenario = from_flags(["container"], ["hello"], duration=0.5, warmup=0.0, repeat=1)
        runner = Runner(scenario, tmp_path)
        run_dir = runner.run()
    (trial,) = results.load_run(run_dir).trials
    assert trial.status == "failed" and f"port 127.0.0.1:{port} is taken" in trial.error, trial.error
    assert containers_of(os.getpid()) == []


@pytest.mark.parametrize("out", ["/etc/passwd/results", "/proc/version/results", "/proc/results"])
def test_an_unwritable_results_folder_is_one_line_and_exit_1(tmp_path, out, sole_cleaner):
    # Root ignores file modes: these fail for root too (a path under a file, a read-only filesystem).
    run = Run(["run", "--setups", "bare", "--duration", "1", "--repeat", "1", "--out", out, *QUICK], tmp_path)
    assert run.wait() == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot ") and out in lines[0], run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert_nothing_left(run)


def test_a_results_folder_on_a_read_only_filesystem_is_one_line_and_exit_1(tmp_path, sole_cleaner):
    mount = tmp_path / "ro"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True)
    require(mounted.returncode == 0, f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        run = Run(["run", "--setups", "bare", "--duration", "1", "--repeat", "1", "--out", str(mount), *QUICK],
                  tmp_path / "logs")
        assert run.wait() == 1, run.stdout + run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot write results") and "Read-only" in lines[0]
        assert "Traceback" not in run.stdout + run.stderr
        assert_nothing_left(run)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_results_folder_that_fills_up_mid_run_fails_cleanly(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True)
    require(mounted.returncode == 0, f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        run = Run(["run", "--setups", "bare", "--duration", "1", "--repeat", "1", "--out", str(mount), *QUICK],
                  tmp_path / "logs")
        assert run.finish() in (1, 3), run.stdout + run.stderr
        assert "Traceback" not in run.stdout + run.stderr
        (line,) = failure_lines(run.stdout)
        assert line.startswith("bare/hello/r0 failed: OSError: "), line
        record = results.load_run(run_dir_of(mount))
        assert [(t.status, t.error.startswith("OSError")) for t in record.trials] == [("failed", True)]
        assert_nothing_left(run)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# ---- the runner interrupted ----------------------------------------------------------------------

@pytest.mark.docker
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_exits_130_is_marked_incomplete_and_resumes(tmp_path, signum, sole_cleaner):
    docker_or_skip()
    out = tmp_path / "r"
    run = Run(["run", "--setups", "bare,container", "--duration", "1", "--repeat", "1", "--out", str(out), *QUICK],
              tmp_path)
    (app,) = wait_for(run.apps, 20, "the bare app")
    wait_for(lambda: answers(app_port(app)), 15, "the app to answer")
    time.sleep(0.5)
    run.popen.send_signal(signum)
    assert run.wait() == 130, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted; the trials measured so far are in "), lines
    run_dir = run_dir_of(out)
    assert results.load_run(run_dir).status == "incomplete"
    shown = subprocess.run([BENCH, "show", str(run_dir)], capture_output=True, text=True, env=ENV, timeout=60)
    assert shown.returncode == 0 and "incomplete" in shown.stdout, shown.stdout + shown.stderr
    assert_nothing_left(run)

    resumed = Run(["run", "--resume", str(run_dir), "--no-report"], tmp_path / "resume")
    assert resumed.wait() == 0, resumed.stdout + resumed.stderr
    record = results.load_run(run_dir)
    assert record.status == "complete"
    assert sorted((t.setup, t.status) for t in record.trials) == [("bare", "ok"), ("container", "ok")]
    assert_nothing_left(resumed)


@pytest.mark.docker
def test_a_killed_runner_leaves_a_readable_incomplete_run_and_clean_removes_the_container(tmp_path, sole_cleaner):
    docker_or_skip()
    # 1. SIGKILL during the bare trial: the app dies with its parent (PR_SET_PDEATHSIG).
    bare_run = Run(["run", "--setups", "bare", "--duration", "3", "--repeat", "1", "--out", str(tmp_path / "a"),
                    *QUICK], tmp_path / "a-logs")
    (app,) = wait_for(bare_run.apps, 20, "the bare app")
    wait_for(lambda: answers(app_port(app)), 15, "the app to answer")
    bare_run.popen.kill()
    bare_run.wait()
    wait_for(lambda: not psutil.pid_exists(app.pid) or app.status() == "zombie", 5, "the app to die with its parent")
    shown = subprocess.run([BENCH, "show", str(run_dir_of(tmp_path / "a"))], capture_output=True, text=True,
                           env=ENV, timeout=60)
    assert shown.returncode == 0 and "incomplete" in shown.stdout, shown.stdout + shown.stderr
    listed = subprocess.run([BENCH, "list", "--results", str(tmp_path / "a")], capture_output=True, text=True,
                            env=ENV, timeout=60)
    assert listed.returncode == 0 and listed.stdout.split()[-1] == "incomplete", listed.stdout

    # 2. SIGKILL during the container trial: the container outlives it until `bench clean`.
    container_run = Run(["run", "--setups", "container", "--duration", "3", "--repeat", "1", "--out",
                         str(tmp_path / "b"), *QUICK], tmp_path / "b-logs")
    (name,) = wait_for(lambda: containers_of(container_run.pid), 30, "the container")
    time.sleep(1.0)
    container_run.popen.kill()
    container_run.wait()
    assert containers_of(container_run.pid) == [name]

    warned = Run(["run", "--setups", "bare", "--duration", "0.5", "--repeat", "1", "--out", str(tmp_path / "c"),
                  *QUICK], tmp_path / "c-logs")
    assert warned.wait() == 0
    assert "leftover(s) from an earlier run are still running" in warned.stderr and "bench clean" in warned.stderr
    assert containers_of(container_run.pid) == [name]  # warned, not cleaned: cleaning is the user's call

    cleaned = subprocess.run([BENCH, "clean"], capture_output=True, text=True, env=ENV, timeout=60)
    assert cleaned.returncode == 0 and f"removed container {name}" in cleaned.stdout, cleaned.stdout + cleaned.stderr
    assert containers_of(container_run.pid) == []


# ---- one writer per run ----------------------------------------------------------------------------

def _live_run(tmp_path: Path, setups: str) -> tuple[Run, Path]:
    # Five 1.2 s trials: still going while the test acts (a second runner starts in a second or two), and
    # what a resume then has left to run is short.
    run = Run(["run", "--setups", setups, "--duration", "1", "--repeat", "5", "--out", str(tmp_path / "r"), *QUICK],
              tmp_path / "first")
    run_dir = wait_for(lambda: (tmp_path / "r").is_dir() and next(
        (d for d in (tmp_path / "r").iterdir() if (d / "run.json").is_file()), None), 30, "the run folder")
    return run, run_dir


def test_resuming_a_run_that_is_still_going_is_refused_with_one_line(tmp_path, sole_cleaner):
    run, run_dir = _live_run(tmp_path, "bare")
    try:
        second = Run(["run", "--resume", str(run_dir), "--no-report"], tmp_path / "second")
        assert second.wait(60) == 1, second.stdout + second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert line.startswith(f"error: run {run_dir.name} is still being written by runner pid {run.pid}"), line
        assert second.stdout.strip() == ""  # refused before anything ran or was written
        assert run.popen.poll() is None  # the first runner goes on, alone
    finally:
        run.popen.send_signal(signal.SIGINT)
        run.wait()
    record = results.load_run(run_dir)
    assert record.runner_pid == run.pid and len({t.trial_id for t in record.trials}) == len(record.trials)
    resumed = Run(["run", "--resume", str(run_dir), "--no-report"], tmp_path / "third")  # its writer is gone now
    assert resumed.finish(120) == 0, resumed.stdout + resumed.stderr
    assert results.load_run(run_dir).status == "complete"


@pytest.mark.docker
def test_clean_of_one_run_spares_a_run_that_is_still_going(tmp_path):
    docker_or_skip()
    run, run_dir = _live_run(tmp_path, "container")
    try:
        wait_for(lambda: containers_of(run.pid), 60, "the container")
        cleaned = subprocess.run([BENCH, "clean", "--run", run_dir.name, "--results", str(tmp_path / "r")],
                                 capture_output=True, text=True, env=ENV, timeout=60)
        assert cleaned.returncode == 1, cleaned.stdout + cleaned.stderr
        (line,) = cleaned.stderr.strip().splitlines()
        assert line.startswith(f"error: run {run_dir.name} is still going (runner pid {run.pid})"), line
        # Not found by folder (another --results): the container is still spared, its runner lives.
        elsewhere = subprocess.run([BENCH, "clean", "--run", run_dir.name, "--results", str(tmp_path / "none")],
                                   capture_output=True, text=True, env=ENV, timeout=60)
        # (Leftovers of other runs whose runner is dead may go: the other test worker kills runners too.)
        mine = [line for line in elsewhere.stdout.splitlines() if "removed" in line
                and (run_dir.name in line or str(run.pid) in line)]
        assert elsewhere.returncode == 0 and not mine, elsewhere.stdout + elsewhere.stderr
        # Spared: nothing removed, the runner goes on (it may be on its next start, with a new container).
        assert containers_of(run.pid) and run.popen.poll() is None
    finally:
        run.popen.send_signal(signal.SIGINT)
        assert run.wait() == 130
    assert_nothing_left(run)


# ---- a stalled app -------------------------------------------------------------------------------

def test_an_app_stopped_for_seconds_during_load_is_flagged_as_a_stall_with_its_max_latency(tmp_path):
    run = Run(["run", "--setups", "bare", "--workloads", "hello", "--duration", "6", "--warmup", "0.5", "--repeat", "1",
               "--out", str(tmp_path / "r"), "--no-report"], tmp_path)
    (app,) = wait_for(run.apps, 20, "the bare app")
    wait_for(lambda: answers(app_port(app)), 15, "the app to answer")
    time.sleep(2.0)  # into the measured window
    app.suspend()  # SIGSTOP: the app holds its sockets and answers nothing
    time.sleep(3.0)
    app.resume()
    assert run.finish() == 0, run.stdout + run.stderr
    (trial,) = results.load_run(run_dir_of(tmp_path / "r")).trials
    assert trial.status == "ok" and trial.load.latency_ms.max >= 2500, trial.load
    assert trial.load.longest_gap_ms >= 2500
    summary = json.loads(subprocess.run([BENCH, "show", str(run_dir_of(tmp_path / "r")), "--format", "json"],
                                        capture_output=True, text=True, env=ENV, timeout=60).stdout)
    (cell,) = summary["results"]
    assert cell["latency_ms"]["max"] >= 2500
    (stall,) = [caveat for caveat in cell["caveats"] if caveat["kind"] == "stall"]
    assert stall["flag"].startswith("stalled ") and "1 trial" in stall["flag"], stall
    shown = subprocess.run([BENCH, "show", str(run_dir_of(tmp_path / "r"))], capture_output=True, text=True, env=ENV,
                           timeout=60)
    assert "max ms" in shown.stdout and stall["flag"] in shown.stdout, shown.stdout
    assert_nothing_left(run)
