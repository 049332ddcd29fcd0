"""The bare setup: the app as a plain child process on the host, the baseline of every ratio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.images.rootfs import APP_SIGNATURE, PACKAGE_PARENT, app_argv
from bench.netutil import free_port
from bench.setups import register
from bench.setups.base import ROLE_APP, Instance, RoleProcess, Setup, SetupError, die_with_parent


def app_command(host: str, port: int) -> list[str]:
    """The command that runs the app with this very interpreter, from this checkout."""
    return app_argv(sys.executable, host, port, app_dir=str(PACKAGE_PARENT))


@register
class BareSetup(Setup):
    name = "bare"
    layer = "the app as a plain host process: app -> host kernel -> hardware"
    narration = ("the app as a plain process: only the host kernel stands between it and the hardware. "
                 "Every other figure is divided by this one.")
    ready_deadline_s = 15.0

    @classmethod
    def check(cls) -> str | None:
        return None

    def _launch(self) -> Instance:
        port = free_port()
        log_path = self.workdir / f"bare-{port}.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(app_command("127.0.0.1", port), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=die_with_parent)
        try:
            os.sched_setaffinity(popen.pid, self.pinning.app_cpus)
        except OSError as error:
            popen.kill()
            raise SetupError(f"cannot pin the app to CPUs {list(self.pinning.app_cpus)}: {error}") from None
        spawn_s = time.perf_counter() - began
        app = psutil.Process(popen.pid)

        def processes() -> list[RoleProcess]:
            found = [RoleProcess(ROLE_APP, app)]
            try:
                found += [RoleProcess(ROLE_APP, child) for child in app.children(recursive=True)]
            except psutil.Error:
                pass
            return found

        return Instance(port=port, processes=processes, phases={"spawn_s": spawn_s},
                        facts={"pid": popen.pid, "log": str(log_path)}, handle=popen)

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


def _orphans() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["ppid", "cmdline"]):
        if process.info["ppid"] == 1 and APP_SIGNATURE in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def find_leftovers() -> list[str]:
    """Bare apps whose runner is gone (reparented to init)."""
    return [f"bare app pid {process.pid}" for process in _orphans()]


def clean_leftovers() -> list[str]:
    """Kill bare apps whose runner is gone; what was removed."""
    removed = []
    for process in _orphans():
        try:
            process.kill()
            removed.append(f"bare app pid {process.pid}")
        except psutil.Error:
            pass
    return removed
