"""Ctrl-C and SIGTERM at every phase of every setup's lifecycle leave nothing behind.

Each case runs a real one-trial run in this process and sends the signal at one known moment:
a hook on the Docker SDK, on the /health poll, on QEMU's spawn or QMP socket, or a timer inside
the measured window. Then no container of the run (running or not), no docker-proxy for its
port, no QEMU of this process, no app and no temp dir may remain. The moments that matter most
are "the engine finished the call but the client never saw the answer" (create, start) and
"the signal lands in the middle of the stop".

tools/interrupt_check.py does the same from outside, 20 times per phase, with `bench run`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import threading

import psutil
import pytest

from bench.app.command import APP_SIGNATURE
from bench.metrics.sampler import Sampler
from bench.runner import Runner
from bench.scenario import from_flags
from tests.integration.test_faults import docker_or_skip, qemus_of, vm_or_skip, wait_for

pytestmark = pytest.mark.integration

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def cases(phases: list[str], sigterm_at: tuple[str, ...]) -> list[tuple[str, str]]:
    """Ctrl-C at every phase; SIGTERM, which the runner turns into the same interrupt by one handler,
    where a launch and a stop hold signals back (tools/interrupt_check.py sends both, everywhere)."""
    return [(phase, "SIGINT") for phase in phases] + [(phase, "SIGTERM") for phase in sigterm_at]


class Moment:
    """Where the signal lands: records what the run created, and fires the signal once."""

    def __init__(self, signum: int):
        self.signum = signum
        self.fired = False
        self.temp_paths: list[str] = []
        self.host_ports: set[int] = set()

    def fire(self) -> None:
        """Send the signal to this process now (in the main thread: handled before this returns,
        unless the code under test holds it back)."""
        if not self.fired:
            self.fired = True
            signal.raise_signal(self.signum)

    def fire_later(self, delay_s: float) -> None:
        """Send the signal from another thread after delay_s (lands in whatever runs then)."""
        if not self.fired:
            self.fired = True
            timer = threading.Timer(delay_s, os.kill, (os.getpid(), self.signum))
            timer.daemon = True
            timer.start()


def _after(owner, name: str, moment: Moment, monkeypatch, when=lambda *a, **k: True):
    """Patch owner.name so the signal fires right after the real call returned."""
    real = getattr(owner, name)

    def patched(*args, **kwargs):
        result = real(*args, **kwargs)
        if when(*args, **kwargs):
            moment.fire()
        return result
    monkeypatch.setattr(owner, name, patched)


def _before(owner, name: str, moment: Moment, monkeypatch, when=lambda *a, **k: True):
    """Patch owner.name so the signal fires as the call begins."""
    real = getattr(owner, name)

    def patched(*args, **kwargs):
        if when(*args, **kwargs):
            moment.fire()
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, patched)


def _record_temp_paths(moment: Moment, monkeypatch) -> None:
    real_mkdtemp, real_mkstemp = tempfile.mkdtemp, tempfile.mkstemp

    def mkdtemp(*args, **kwargs):
        path = real_mkdtemp(*args, **kwargs)
        moment.temp_paths.append(path)
        return path

    def mkstemp(*args, **kwargs):
        handle, path = real_mkstemp(*args, **kwargs)
        moment.temp_paths.append(path)
        return handle, path
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _health_poll(self, method, url, *args, **kwargs):
    return url == "/health"


def _arm_common(phase: str, moment: Moment, monkeypatch) -> bool:
    """Hooks every setup shares: the readiness poll, the measured window. True if phase was one."""
    if phase == "readiness":
        _before(http.client.HTTPConnection, "request", moment, monkeypatch, when=_health_poll)
    elif phase == "load":
        real_enter = Sampler.__enter__

        def enter(self):
            moment.fire_later(0.4)  # the window lasts 1.5 s after a 0.2 s warm-up
            return real_enter(self)
        monkeypatch.setattr(Sampler, "__enter__", enter)
    else:
        return False
    return True


def _arm_container(phase: str, moment: Moment, monkeypatch) -> None:
    import docker

    api = docker.api.container.ContainerApiMixin
    real_create = api.create_container

    def create_container(self, *args, **kwargs):
        bindings = (kwargs.get("host_config") or {}).get("PortBindings") or {}
        moment.host_ports.update(int(b["HostPort"]) for binds in bindings.values() for b in binds or [])
        result = real_create(self, *args, **kwargs)
        if phase == "create":  # dockerd made it; the client never saw the answer
            moment.fire()
        return result
    monkeypatch.setattr(api, "create_container", create_container)
    if phase == "prepare":
        _after(docker.models.images.ImageCollection, "get", moment, monkeypatch)
    elif phase == "start":  # running, docker-proxy listening; the client never saw the answer
        _after(api, "start", moment, monkeypatch)
    elif phase == "stop":  # the signal lands as the stop begins
        _before(api, "stop", moment, monkeypatch)
    elif phase != "create" and not _arm_common(phase, moment, monkeypatch):
        raise AssertionError(f"no hook for phase {phase}")


def _is_qemu(command, *args, **kwargs) -> bool:
    """A VM's QEMU (named layerbench-vm-...), not a `qemu-system-x86_64 --version` probe."""
    parts = [str(part) for part in (command if isinstance(command, list) else [command])]
    return any("qemu-system" in part for part in parts) and any(part.startswith("layerbench-vm-") for part in parts)


def _arm_vm(phase: str, moment: Moment, monkeypatch) -> None:
    if phase == "launch":  # QEMU spawned; the setup has not seen its handle yet
        _after(subprocess, "Popen", moment, monkeypatch, when=_is_qemu)
    elif phase == "boot":  # the guest kernel is booting (TCG takes seconds to reach init)
        real_popen = subprocess.Popen

        def popen(command, *args, **kwargs):
            result = real_popen(command, *args, **kwargs)
            if _is_qemu(command):
                moment.fire_later(1.0)
            return result
        monkeypatch.setattr(subprocess, "Popen", popen)
    elif phase == "stop":  # the signal lands as QMP is asked to quit
        _before(socket.socket, "connect", moment, monkeypatch,
                when=lambda sock, address: isinstance(address, str) and address.endswith("qmp.sock"))
    elif not _arm_common(phase, moment, monkeypatch):
        raise AssertionError(f"no hook for phase {phase}")


def _arm_bare(phase: str, moment: Moment, monkeypatch) -> None:
    if phase == "launch":
        _after(subprocess, "Popen", moment, monkeypatch,
               when=lambda command, *a, **k: APP_SIGNATURE in " ".join(map(str, command)))
    elif phase == "stop":
        _before(os, "killpg", moment, monkeypatch)
    elif not _arm_common(phase, moment, monkeypatch):
        raise AssertionError(f"no hook for phase {phase}")


def _interrupted_run(setup: str, phase: str, signum: int, arm, tmp_path, monkeypatch) -> tuple[Runner, Moment]:
    moment = Moment(signum)
    _record_temp_paths(moment, monkeypatch)
    arm(phase, moment, monkeypatch)
    # The window's length matters only where the signal lands inside it ("load": 0.4 s into 1.7 s); a
    # run stopped anywhere else need not wait through it ("stop" runs it whole first).
    scenario = from_flags([setup], ["hello"], duration=1.5 if phase == "load" else 0.3, warmup=0.2, repeat=1)
    runner = Runner(scenario, tmp_path)
    with pytest.raises(KeyboardInterrupt):  # RunInterrupted (SIGTERM) is one too
        runner.run()
    monkeypatch.undo()
    assert moment.fired, f"the {phase} hook never fired: the test did not reach that phase"
    return runner, moment


def _containers(run_id: str) -> list[str]:
    listed = subprocess.run(["docker", "ps", "-a", "--filter", f"label=layerbench.run={run_id}", "--format",
                             "{{.Names}} {{.Status}}"], capture_output=True, text=True, timeout=30, check=True)
    return listed.stdout.splitlines()


def _proxies(ports: set[int]) -> list[int]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "docker-proxy" and any(
                cmdline[i + 1] == str(port) for i, arg in enumerate(cmdline[:-1]) if arg == "-host-port"
                for port in ports):
            found.append(process.pid)
    return found


def _apps_of_this_process() -> list[int]:
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if APP_SIGNATURE in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
    return found


def _assert_nothing_left(runner: Runner, moment: Moment) -> None:
    if moment.host_ports or _docker_present():
        assert _containers(runner.run_id) == [], "containers left behind"
        # docker-proxy goes with the container's network endpoint; give dockerd a moment to reap it.
        wait_for(lambda: not _proxies(moment.host_ports), 10, "docker-proxy to exit")
    assert qemus_of(os.getpid()) == [], "QEMU left behind"
    assert _apps_of_this_process() == [], "bare apps left behind"
    left = [path for path in moment.temp_paths if os.path.exists(path)]
    assert left == [], f"temp files or dirs left behind: {left}"
    assert not (runner.run_dir / "work").exists() or all(
        path.name.endswith("-serial.log") for path in (runner.run_dir / "work").iterdir()), "app logs left behind"


def _docker_present() -> bool:
    from bench.setups.container import ContainerSetup

    return ContainerSetup.check() is None


@pytest.mark.docker
@pytest.mark.parametrize("phase, signame", cases(["prepare", "create", "start", "readiness", "load", "stop"],
                                                 ("create", "stop")))
def test_an_interrupt_at_any_container_phase_leaves_nothing(tmp_path, monkeypatch, phase, signame):
    docker_or_skip()
    runner, moment = _interrupted_run("container", phase, SIGNALS[signame], _arm_container, tmp_path, monkeypatch)
    if phase != "prepare":
        assert moment.host_ports, "no container was created"
    _assert_nothing_left(runner, moment)


@pytest.mark.qemu
@pytest.mark.parametrize("phase, signame", cases(["launch", "boot", "readiness", "load", "stop"], ("launch", "stop")))
def test_an_interrupt_at_any_vm_phase_leaves_nothing(tmp_path, monkeypatch, phase, signame):
    vm_or_skip()
    runner, moment = _interrupted_run("vm", phase, SIGNALS[signame], _arm_vm, tmp_path, monkeypatch)
    _assert_nothing_left(runner, moment)


@pytest.mark.parametrize("phase, signame", cases(["launch", "readiness", "load", "stop"], ("launch", "stop")))
def test_an_interrupt_at_any_bare_phase_leaves_nothing(tmp_path, monkeypatch, phase, signame):
    runner, moment = _interrupted_run("bare", phase, SIGNALS[signame], _arm_bare, tmp_path, monkeypatch)
    _assert_nothing_left(runner, moment)


@pytest.mark.docker
def test_a_create_that_times_out_after_the_engine_made_the_container_leaves_nothing(tmp_path, monkeypatch):
    """The client gives up (a read timeout) while dockerd finishes the create: the launch's undo
    removes the container by its name, which it chose before asking."""
    docker_or_skip()
    import docker
    import requests

    api = docker.api.container.ContainerApiMixin
    real_create, names = api.create_container, []

    def create_container(self, *args, **kwargs):
        real_create(self, *args, **kwargs)
        names.append(kwargs.get("name"))
        raise requests.exceptions.ReadTimeout("read timed out (test)")
    monkeypatch.setattr(api, "create_container", create_container)
    runner = Runner(from_flags(["container"], ["hello"], duration=0.5, warmup=0.1, repeat=1), tmp_path)
    runner.run()
    monkeypatch.undo()
    (trial,) = runner.record.trials
    assert trial.status == "failed" and "read timed out (test)" in trial.error, trial.error
    assert names and _containers(runner.run_id) == []
