"""containerd shims that outlived their container: what a failed gVisor start leaves behind.

A runsc container whose start fails (measured: gVisor's sandbox networking on this kind of host)
disappears from `docker ps -a`, but its `containerd-shim-runc-v2 -namespace moby -id <ID>` stays,
with the runsc gofer, sentry and stubs under it (~70-80 MB RSS each time), and containerd keeps a
task in state CREATED. runsc refuses to signal a container in that state, so `ctr tasks delete
--force` fails; what works: kill the shim's descendants by pid (deepest first), then `ctr tasks
delete` and `ctr containers delete`, after which the shim exits by itself.

A shim is layerbench's when containerd's record of its container runs the app (APP_SIGNATURE in
its args); its run is the LAYERBENCH_RUN variable the container setup puts in its environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import psutil

from bench.app.command import APP_SIGNATURE

NAMESPACE = "moby"  # the containerd namespace dockerd uses
SHIM_PREFIX = "containerd-shim"  # runc, runsc and crun all run under containerd-shim-runc-v2 here
RUN_ENV = "LAYERBENCH_RUN"  # in the container's environment: which run started it
MIN_AGE_S = 10.0  # a younger shim may belong to a container Docker is creating right now
DEFAULT_ADDRESS = "/var/run/docker/containerd/containerd.sock"  # dockerd's own containerd
# The shims of a run's private dockerd (bench.setups.container.private_engine) talk to a containerd
# in that engine's folder: the user's daemon does not list their containers, yet they are not orphans.
PRIVATE_ENGINE_MARK = "/layerbench-engine-"


@dataclass
class Shim:
    """A containerd shim in dockerd's namespace and what it knows of its container."""

    pid: int
    container_id: str
    address: str  # containerd's socket, from the shim's own command line
    age_s: float
    descendants: list[int] = field(default_factory=list)
    args: list[str] = field(default_factory=list)  # the container's process args (containerd's record)
    env: list[str] = field(default_factory=list)

    @property
    def ours(self) -> bool:
        return any(APP_SIGNATURE in arg for arg in self.args)

    @property
    def run_id(self) -> str | None:
        return next((item.split("=", 1)[1] for item in self.env if item.startswith(f"{RUN_ENV}=")), None)

    def describe(self) -> str:
        return f"containerd shim pid {self.pid} of gone container {self.container_id[:12]} ({len(self.descendants)} " \
               f"processes under it)"


def _flags(cmdline: list[str]) -> dict[str, str]:
    return {cmdline[i]: cmdline[i + 1] for i in range(1, len(cmdline) - 1) if cmdline[i].startswith("-")}


def shims(min_age_s: float = 0.0, wanted: Callable[[str], bool] = lambda container_id: True) -> list[Shim]:
    """The containerd shims in dockerd's namespace at least min_age_s old whose container id is
    `wanted`, with their container's record (one `ctr` call each, so filter first)."""
    found = []
    now = time.time()
    for process in psutil.process_iter(["cmdline", "create_time"]):
        cmdline = process.info["cmdline"] or []
        if not cmdline or not cmdline[0].rsplit("/", 1)[-1].startswith(SHIM_PREFIX):
            continue
        flags = _flags(cmdline)
        if flags.get("-namespace") != NAMESPACE or "-id" not in flags or not wanted(flags["-id"]):
            continue
        age_s = now - (process.info["create_time"] or now)
        if age_s < min_age_s:
            continue
        try:
            descendants = [child.pid for child in process.children(recursive=True)]
        except psutil.Error:
            continue
        shim = Shim(process.pid, flags["-id"], flags.get("-address", DEFAULT_ADDRESS), age_s, descendants)
        shim.args, shim.env = _record(shim)
        found.append(shim)
    return found


def orphans(known_ids: set[str], min_age_s: float | None = None) -> list[Shim]:
    """layerbench's shims whose container Docker no longer lists (`known_ids`: docker ps -a --no-trunc),
    at least min_age_s (default MIN_AGE_S) old."""
    age = MIN_AGE_S if min_age_s is None else min_age_s
    return [shim for shim in shims(age, lambda container_id: container_id not in known_ids)
            if shim.ours and PRIVATE_ENGINE_MARK not in shim.address]  # a private engine's: its own cleanup


def _ctr(shim: Shim, *args: str) -> subprocess.CompletedProcess | None:
    ctr = shutil.which("ctr")
    if ctr is None:
        return None
    try:
        return subprocess.run([ctr, "--address", shim.address, "-n", NAMESPACE, *args], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def _record(shim: Shim) -> tuple[list[str], list[str]]:
    """(args, env) of the shim's container as containerd recorded it; ([], []) when it has none."""
    result = _ctr(shim, "containers", "info", shim.container_id)
    try:
        process = json.loads(result.stdout)["Spec"]["process"] if result is not None else {}
        return list(process.get("args") or []), list(process.get("env") or [])
    except (ValueError, KeyError, TypeError):
        return [], []


def remove(shim: Shim) -> bool:
    """Kill the shim's processes (deepest first), drop containerd's task and container; True when gone."""
    victims = []
    for pid in reversed(shim.descendants):
        try:
            process = psutil.Process(pid)
            process.kill()
            victims.append(process)
        except psutil.Error:
            continue
    psutil.wait_procs(victims, timeout=5)
    for what in ("tasks", "containers"):
        _ctr(shim, what, "delete", shim.container_id)
    try:
        process = psutil.Process(shim.pid)
    except psutil.Error:
        return True
    try:
        process.wait(timeout=3)  # the shim exits once containerd has deleted its task
    except psutil.TimeoutExpired:
        process.kill()  # no ctr here, or containerd refused: the processes go anyway
        psutil.wait_procs([process], timeout=3)
    except psutil.Error:
        pass
    return not psutil.pid_exists(shim.pid)


def remove_shims_of(container_id: str) -> list[str]:
    """After a failed start: remove the shim of that container if Docker left one; what was removed."""
    return [shim.describe() for shim in shims(0.0, lambda found: found == container_id) if remove(shim)]


def docker_orphans() -> list[Shim]:
    """layerbench's shims whose container Docker no longer lists (left by failed gVisor starts)."""
    from bench.setups.container import engine

    with engine.client_if_daemon(10) as client:
        if client is None:
            return []
        try:
            known = {entry["Id"] for entry in client.api.containers(all=True, trunc=False)}
        except Exception:
            return []
    return orphans(known)
