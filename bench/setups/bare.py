"""The bare setup: the app as a plain child process on the host, the baseline of every ratio.

It asks the app how to start as a host process (bench.apps): layerbench's python app with this very
interpreter, nginx from the host's binary, or a user's image from its extracted root filesystem,
chrooted and as the image's user, with no namespaces and no cgroup limits.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

from bench.app.command import APP_SIGNATURE
from bench.apps.base import LEFTOVER_ENV, Layer, Place, Start, Tree
from bench.errors import SetupError
from bench.netutil import free_port, port_in_use
from bench.roles import APP, RoleProcess
from bench.setups.base import Instance, Setup
from bench.setups.procutil import descendant_pids, die_with_parent
from bench.setups.registry import register


def _preexec(start: Start, root: Tree | None, cpus: tuple[int, ...]):
    """Runs in the child before exec: pin, for an image enter its root, become the app's user, and
    die with the runner (in that order: chroot and setuid need root, and a change of user clears
    the death signal)."""
    def enter() -> None:
        try:
            os.sched_setaffinity(0, cpus)  # before exec: every process the app forks inherits it
        except OSError:
            pass  # the parent pins again and reports a failure in words
        if root is not None:
            os.chroot(root.path)
            os.chdir(start.workdir or "/")
        if start.user is not None:
            os.setgroups([])
            os.setgid(start.user[1])
            os.setuid(start.user[0])
        die_with_parent(start.stop_signal)
    return enter


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
    runs_app_as = Layer.HOST

    @classmethod
    def check(cls) -> str | None:
        return None

    @classmethod
    def find_leftovers(cls) -> list[str]:
        """Bare apps whose runner is gone (reparented to init)."""
        return [f"bare app pid {process.pid}" for process in _orphans()]

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        """Kill bare apps whose runner is gone (only run_id's, when given: its apps carry it)."""
        removed = []
        for process in _orphans(run_id):
            try:
                process.kill()
                removed.append(f"bare app pid {process.pid}")
            except psutil.Error:
                pass
        return removed  # the folders of host starts a killed runner left: bench.scratch sweeps them

    def prepare(self) -> None:
        if self.app.bare_from_tree:  # an image: its files are extracted once, before any start is timed
            if os.geteuid() != 0:
                raise SetupError("bare for an image chroots into its files, which needs root")
            self.app.tree(self.progress)

    def _launch(self) -> Instance:
        began = time.perf_counter()
        root = self.app.tree() if self.app.bare_from_tree else None
        start = self.app.start(Place(Layer.HOST, self.address, free_port(self.address), files=root))
        if root is not None and port_in_use(start.port, self.address):
            _drop_scratch(start.scratch)
            raise SetupError(f"port {start.port} on this host is taken, and the image listens on that port only")
        log_path = self.workdir / f"bare-{start.port}.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**(start.env if start.env is not None else os.environ), LEFTOVER_ENV: f"{os.getpid()} {self.run_id}"}
        try:
            with open(log_path, "wb") as log:
                popen = subprocess.Popen(start.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env,
                                         preexec_fn=_preexec(start, root, self.pinning.app_cpus))
        except (OSError, subprocess.SubprocessError) as error:
            _drop_scratch(start.scratch)
            raise SetupError(f"cannot start {self.app.name} ({start.argv[0]}): {error}") from None
        app = psutil.Process(popen.pid)  # an unreaped child stays a valid pid until we wait for it
        instance = Instance(port=start.port, processes=lambda: _app_and_children(app), phases={},
                            facts={"pid": popen.pid, "log": str(log_path),
                                   "chroot": str(root.path) if root is not None else None,
                                   "uid": start.user[0] if start.user else None,
                                   "scratch": str(start.scratch) if start.scratch else None},
                            handle=popen, address=self.address)
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
        _drop_scratch(instance.facts.get("scratch"))


def _drop_scratch(folder) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _app_and_children(app: psutil.Process) -> list[RoleProcess]:
    pids = descendant_pids(app.pid)
    if pids is None:
        try:
            pids = [child.pid for child in app.children(recursive=True)]
        except psutil.Error:
            pids = []
    found = [RoleProcess(APP.key, app)]
    for pid in pids:
        try:
            found.append(RoleProcess(APP.key, psutil.Process(pid)))
        except psutil.Error:
            pass  # exited meanwhile
    return found


def _orphans(run_id: str | None = None) -> list[psutil.Process]:
    """Bare apps reparented to init whose runner is gone: any app by the marker in its environment
    (nginx rewrites its command line, and an orphaned nginx worker keeps serving), the python app
    of an older version by its command line. With run_id: only that run's."""
    found = []
    for process in psutil.process_iter(["ppid", "cmdline"]):
        if process.info["ppid"] != 1:
            continue
        marked = _marked_by(process)
        if marked is not None:
            runner, its_run = marked
            if not psutil.pid_exists(runner) and run_id in (None, its_run):
                found.append(process)
        elif run_id is None and APP_SIGNATURE in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def _marked_by(process: psutil.Process) -> tuple[int, str] | None:
    """(runner pid, run id) from a bare app's environment marker, or None."""
    try:
        runner, _, run_id = (process.environ().get(LEFTOVER_ENV) or "").partition(" ")
    except psutil.Error:
        return None
    return (int(runner), run_id) if runner.isdigit() else None
