"""The bare setup: the app as a plain child process on the host, the baseline of every ratio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.app.command import APP_SIGNATURE, PACKAGE_PARENT, app_argv
from bench.errors import SetupError
from bench.netutil import free_port
from bench.roles import APP, RoleProcess
from bench.setups.base import Instance, Setup
from bench.setups.procutil import die_with_parent
from bench.setups.registry import register


def app_command(host: str, port: int) -> list[str]:
    """The command that runs the app with this very interpreter, from this checkout."""
    return app_argv(sys.executable, host, port, app_dir=str(PACKAGE_PARENT))


@register
class BareSetup(Setup):
    name = "bare"
    stack = "app → host kernel → hardware"
    narration = ("the app as a plain process: only the host kernel stands between it and the hardware. "
                 "Every other figure is divided by this one.")
    explanation = ("The app runs as an ordinary host process and talks straight to the host kernel. This is the "
                   "baseline: every ratio in this report is a setup's figure divided by this one.")
    colour = "#4d4d4d"
    order = 0
    baseline = True
    roles = (APP,)
    stack_layers = ("hardware", "host kernel", "app")
    ready_deadline_s = 15.0

    @classmethod
    def check(cls) -> str | None:
        return None

    @classmethod
    def find_leftovers(cls) -> list[str]:
        """Bare apps whose runner is gone (reparented to init)."""
        return [f"bare app pid {process.pid}" for process in _orphans()]

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        """Kill bare apps whose runner is gone (they carry no run id: run_id cannot narrow it)."""
        removed = []
        for process in _orphans():
            try:
                process.kill()
                removed.append(f"bare app pid {process.pid}")
            except psutil.Error:
                pass
        return removed

    def _launch(self) -> Instance:
        port = free_port(self.address)
        log_path = self.workdir / f"bare-{port}.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(app_command(self.address, port), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=die_with_parent)
        app = psutil.Process(popen.pid)  # an unreaped child stays a valid pid until we wait for it
        instance = Instance(port=port, processes=lambda: _app_and_children(app), phases={},
                            facts={"pid": popen.pid, "log": str(log_path)}, handle=popen, address=self.address)
        self._launching = instance  # _abort_launch stops it if pinning fails or Ctrl-C lands here
        try:
            os.sched_setaffinity(popen.pid, self.pinning.app_cpus)
        except OSError as error:
            raise SetupError(f"cannot pin the app to CPUs {list(self.pinning.app_cpus)}: {error}") from None
        instance.phases["spawn_s"] = time.perf_counter() - began
        self._launching = None
        return instance

    def _abort_launch(self) -> None:
        instance, self._launching = getattr(self, "_launching", None), None
        if instance is not None:
            self._terminate(instance)

    def diagnose(self, instance: Instance) -> str:
        try:
            tail = Path(instance.facts["log"]).read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return " | ".join(tail)

    def _terminate(self, instance: Instance) -> None:
        popen: subprocess.Popen = instance.handle
        if popen.poll() is None:
            try:
                os.killpg(popen.pid, signal.SIGTERM)
                popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(timeout=5)
            except ProcessLookupError:
                pass
        Path(instance.facts["log"]).unlink(missing_ok=True)


def _app_and_children(app: psutil.Process) -> list[RoleProcess]:
    found = [RoleProcess(APP.key, app)]
    try:
        found += [RoleProcess(APP.key, child) for child in app.children(recursive=True)]
    except psutil.Error:
        pass
    return found


def _orphans() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["ppid", "cmdline"]):
        if process.info["ppid"] == 1 and APP_SIGNATURE in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found
