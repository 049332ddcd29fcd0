"""Ctrl-C and SIGTERM at every phase of a Podman start leave nothing, as root and rootless.

Each case runs a real one-trial run in this process (every phase rootless; as root, the phases
around a running container) and sends the signal at one known moment: a hook on the podman
command (after `podman info` in prepare, after `volume create`, as `podman run` begins and after
it returned, after `inspect`, as `rm` begins), on the /health poll, or a timer in the measured
window. Then `podman ps -a` and `podman volume ls` list nothing of the run for root or the
rootless user, no conmon, slirp4netns, rootlessport or pasta is left, and no temp folder.
Two more cases: Ctrl-C as a terminal sends it (to the whole process group of `bench run`) while
`podman run` is under way, and a `podman load` interrupted mid-stream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.runner import Runner
from bench.scenario import parse_scenario
from bench.setups.container.podman import PodmanContainerSetup
from bench.setups.container.podman.cli import Podman
from tests.integration.podman_checks import assert_nothing_left, podman_as, podman_group, podman_or_skip
from tests.integration.test_interrupts import SIGNALS, Moment, _after, _arm_common, _before, _record_temp_paths, cases

pytestmark = podman_group

BENCH = str(Path(sys.executable).with_name("bench"))
PHASES = ["prepare", "volume", "run-begins", "run", "inspect", "readiness", "load", "stop"]
BOTH_USERS = ("run", "stop")  # where root's and the rootless user's cleanup differ most: a container up


def _user_cases() -> list:
    """Every phase for the rootless user (helpers, a user namespace: the most to leave behind);
    as root, the phases around a running container (the other phases run the same code for both,
    and `make test` has about a minute for all of Podman)."""
    return [pytest.param(phase, signame, rootless, id=f"{phase}-{signame}-{'rootless' if rootless else 'rootful'}")
            for phase, signame in cases(PHASES, BOTH_USERS)
            for rootless in (False, True) if rootless or phase in BOTH_USERS]


def _command(phase: str):
    """Which podman call the phase's hook waits for: its first arguments."""
    return {"prepare": ("info",), "volume": ("volume", "create"), "run-begins": ("run",), "run": ("run",),
            "inspect": ("inspect",), "stop": ("rm",)}[phase]


def _arm_podman(phase: str, moment: Moment, monkeypatch) -> None:
    if _arm_common(phase, moment, monkeypatch):
        return
    wanted = _command(phase)
    matches = lambda self, *args, **kwargs: args[:len(wanted)] == wanted  # noqa: E731
    if phase == "prepare":
        _after(Podman, "info", moment, monkeypatch)
    elif phase == "run-begins":  # lands while podman run works (a launch holds it back until done)
        real = Podman.run

        def run(self, *args, **kwargs):
            if matches(self, *args):
                moment.fire_later(0.1)
            return real(self, *args, **kwargs)
        monkeypatch.setattr(Podman, "run", run)
    elif phase == "stop":
        _before(Podman, "run", moment, monkeypatch, when=matches)
    else:  # podman made it; the setup has not seen the answer yet
        _after(Podman, "run", moment, monkeypatch, when=matches)


def _scenario(rootless: bool, duration_s: float):
    options = f"{{engine: podman, rootless: {str(rootless).lower()}, network: bridge, scratch: volume}}"
    return parse_scenario(f"name: podman-interrupt\nsetups:\n  - container: {options}\nworkloads:\n"
                          f"  - {{name: hello, endpoint: hello, connections: 2, duration: {duration_s}, warmup: 0.2}}\n"
                          "repeat: 1\n")


@pytest.mark.parametrize("phase, signame, rootless", _user_cases())
def test_an_interrupt_at_any_phase_of_a_podman_start_leaves_nothing(tmp_path, monkeypatch, phase, signame, rootless):
    podman_or_skip(rootless)
    moment = Moment(SIGNALS[signame])
    _record_temp_paths(moment, monkeypatch)
    _arm_podman(phase, moment, monkeypatch)
    # As in test_interrupts: the 1.5 s window only where the signal lands inside it.
    runner = Runner(_scenario(rootless, 1.5 if phase == "load" else 0.3), tmp_path)
    with pytest.raises(KeyboardInterrupt):  # RunInterrupted (SIGTERM) is one too
        runner.run()
    monkeypatch.undo()
    assert moment.fired, f"the {phase} hook never fired: the test did not reach that phase"
    assert_nothing_left(runner.run_id, rootless_too=rootless)
    left = [path for path in moment.temp_paths if os.path.exists(path)]
    assert left == [], f"temp files or dirs left behind: {left}"


def _podman_run_of(bench: psutil.Process) -> psutil.Process | None:
    for child in bench.children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if cmdline[:1] and cmdline[0].endswith("podman") and "--detach" in cmdline:
            return child
    return None


@pytest.mark.parametrize("rootless", [False, True], ids=["rootful", "rootless"])
def test_ctrl_c_at_a_terminal_during_podman_run_reaches_bench_not_podman(tmp_path, rootless):
    """A terminal's Ctrl-C goes to every process of the foreground group. `bench run` (in a group of
    its own here, as a shell would start it) gets it; podman, in a session of its own, finishes the
    container, which the runner then removes."""
    podman_or_skip(rootless)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"name: podman-ctrl-c\nsetups:\n  - container: {{engine: podman, rootless: {str(rootless).lower()}}}\n"
                        "workloads:\n  - {name: hello, endpoint: hello, connections: 2, duration: 3, warmup: 0.2}\n"
                        "repeat: 1\n")
    bench = subprocess.Popen([BENCH, "run", str(scenario), "--out", str(tmp_path / "results"), "--no-report"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                             env={**os.environ, "NO_COLOR": "1"})
    try:
        found = None
        give_up = time.monotonic() + 60
        while found is None and bench.poll() is None and time.monotonic() < give_up:
            found = _podman_run_of(psutil.Process(bench.pid))
            time.sleep(0.005)
        assert found is not None, "never saw podman run"
        os.killpg(bench.pid, signal.SIGINT)  # what the terminal does
        assert bench.wait(timeout=60) == 130, bench.stderr.read().decode()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        bench.stderr.close()
    run_id = next((tmp_path / "results").iterdir()).name
    assert_nothing_left(run_id, rootless_too=rootless)


def test_an_interrupt_during_podman_load_ends_the_load(tmp_path, monkeypatch):
    """The image is taken out of the rootless user's store so prepare must load it; Ctrl-C lands once
    `podman load` has started: no podman load is left, and the next prepare loads the image whole."""
    podman_or_skip(rootless=True)
    setup = PodmanContainerSetup({"engine": "podman", "rootless": True}, _pinning(), "podman-load", tmp_path)
    setup.prepare()
    image_id = setup._image.image_id.removeprefix("sha256:")
    podman_as(True, "rmi", "--force", image_id)
    moment = Moment(signal.SIGINT)
    _after(Podman, "popen", moment, monkeypatch)  # lands as the popen returns: held until the load is recorded
    with pytest.raises(KeyboardInterrupt):
        setup.prepare()
    monkeypatch.undo()
    assert moment.fired
    loads = [p for p in psutil.process_iter(["cmdline", "status"]) if (p.info["cmdline"] or [])[-1:] == ["load"]
             and "podman" in (p.info["cmdline"] or [""])[0] and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert loads == []
    setup.prepare()
    assert podman_as(True, "image", "inspect", "--format", "{{.Id}}", image_id).strip() == image_id


def _pinning():
    from bench.setups.base import Pinning

    return Pinning.default()
