"""Which host processes a running container costs, and what the kernel charges to its cgroup.

The app is every pid in the container's cgroup, the runtime is its containerd shim (the parent
of the container's init), and with a published port the proxy is the docker-proxy that forwards
it. The shim and the proxy are pinned to the app's CPUs when found.

Under gVisor the cgroup also holds gVisor's own kernel: the sentry (`runsc-sandbox`, Docker's
State.Pid) and the gofer (`runsc-gofer`, its file proxy) play the sandbox role; the stub
processes where the app's code runs (nameless, `exe`) stay the app. argv[0] tells them apart
(the process name is `exe` for all of them).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

from bench.roles import APP, PROXY, RUNTIME, Role, RoleProcess
from bench.setups.procutil import pin_process

DOCKER_PROXY = replace(PROXY, label="docker-proxy (published port)")  # Docker's userland proxy
SANDBOX = Role("sandbox", "gVisor sentry + gofer (user-space kernel)", "#882255")
SANDBOX_ARGV0 = ("runsc-sandbox", "runsc-gofer")  # argv[0] of gVisor's sentry and gofer


@dataclass
class RunningContainer:
    """What _terminate and the attribution need about one started container."""

    container: object  # docker.models.containers.Container
    init_pid: int
    cgroup_dirs: dict[str, Path]  # controller ("cpu", "memory", "pids", or "" for v2) -> directory
    proxy_port: int | None  # the host port docker-proxy listens on (bridge only)
    known: dict[int, psutil.Process] = field(default_factory=dict)  # stable objects for cpu deltas
    proxy_pids: list[int] = field(default_factory=list)
    shim_pids: list[int] = field(default_factory=list)
    proxy_scanned_at: float = 0.0
    cpus: tuple[int, ...] = ()  # the app CPU set: shim and proxy are pinned there too
    pinned: set[int] = field(default_factory=set)
    cgroup_roles: dict[int, str] = field(default_factory=dict)  # pid in the cgroup -> app or sandbox
    scratch: object = None  # bench.setups.container.storage.Scratch: its volume or bind folder, removed after it

    def poll(self) -> int | None:
        """Exit code once the container has stopped, like Popen.poll (used by the readiness wait)."""
        try:
            self.container.reload()
        except Exception:  # gone or daemon down: it is not running either way
            return -1
        state = self.container.attrs.get("State", {})
        return None if state.get("Running") else int(state.get("ExitCode", -1))


def processes(running: RunningContainer) -> list[RoleProcess]:
    """The container's host processes by role; pins the shim and the proxy when first seen."""
    found = [RoleProcess(_cgroup_role(running, process), process)
             for process in stable_processes(running.known, _app_pids(running))]
    found += [RoleProcess(RUNTIME.key, process) for process in stable_processes(running.known, _shim_pids(running))]
    if running.proxy_port is not None:
        found += [RoleProcess(PROXY.key, process) for process in stable_processes(running.known, _proxy_pids(running))]
    # The shim and the proxy work for this container alone: they share its CPU set, as QEMU
    # shares the VM's, so the whole setup draws on the same CPUs as the bare app and never
    # steals from the load generator.
    for role_process in found:
        pid = role_process.process.pid
        if running.cpus and role_process.role not in (APP.key, SANDBOX.key) and pid not in running.pinned \
                and pin_process(pid, running.cpus):
            running.pinned.add(pid)
    return found


def _cgroup_role(running: RunningContainer, process: psutil.Process) -> str:
    """app, or sandbox for gVisor's sentry and gofer (read once per pid: argv[0] does not change)."""
    role = running.cgroup_roles.get(process.pid)
    if role is None:
        try:
            argv0 = (process.cmdline() or [""])[0]
        except psutil.Error:
            argv0 = ""
        role = running.cgroup_roles[process.pid] = SANDBOX.key if argv0 in SANDBOX_ARGV0 else APP.key
    return role


def stable_processes(known: dict[int, psutil.Process], pids: list[int]) -> list[psutil.Process]:
    """The cached psutil.Process per pid in `known` (cpu_percent needs the same object between calls);
    Docker's and Podman's attribution share it."""
    found = []
    for pid in pids:
        process = known.get(pid)
        if process is None or not process.is_running():  # is_running also catches pid reuse
            try:
                process = known[pid] = psutil.Process(pid)
            except psutil.Error:
                known.pop(pid, None)
                continue
        found.append(process)
    return found


def _app_pids(running: RunningContainer) -> list[int]:
    for directory in running.cgroup_dirs.values():
        try:
            return [int(line) for line in (directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            continue
    try:  # no cgroup file readable: ask the engine (runs ps in the container; slower)
        top = running.container.top()
        column = top["Titles"].index("PID")
        return [int(row[column]) for row in top["Processes"]]
    except Exception:
        return []


def _shim_pids(running: RunningContainer) -> list[int]:
    # The shim lives as long as the container: found once, then only checked (the sampler asks every second).
    if running.shim_pids and psutil.pid_exists(running.shim_pids[0]):
        return running.shim_pids
    running.shim_pids = _find_shim(running)
    return running.shim_pids


def _find_shim(running: RunningContainer) -> list[int]:
    try:  # the shim is the parent of the container's init (runc's shim v2 reaps it)
        parent = psutil.Process(running.init_pid).parent()
        if parent is not None and parent.name().startswith("containerd-shim"):
            return [parent.pid]
    except psutil.Error:
        pass
    for process in psutil.process_iter(["name", "cmdline"]):
        if (process.info["name"] or "").startswith("containerd-shim") and \
                running.container.id in " ".join(process.info["cmdline"] or ()):
            return [process.pid]
    return []


def _proxy_pids(running: RunningContainer) -> list[int]:
    # A full process scan costs ~10 ms: do it until found, then only re-check the known pids.
    alive = [pid for pid in running.proxy_pids if psutil.pid_exists(pid)]
    if alive or time.monotonic() - running.proxy_scanned_at < 1.0:
        return alive
    running.proxy_scanned_at = time.monotonic()
    wanted = ["-host-port", str(running.proxy_port)]
    running.proxy_pids = [
        process.pid for process in psutil.process_iter(["name", "cmdline"])
        if (process.info["name"] or "") == "docker-proxy" and _has_pair(process.info["cmdline"] or [], wanted)]
    return running.proxy_pids


def _has_pair(cmdline: list[str], pair: list[str]) -> bool:
    return any(cmdline[i:i + 2] == pair for i in range(len(cmdline) - 1))


# ---- the engine's own accounting (cgroup files: cheap enough to read every second) ------------

def cgroup_dirs(pid: int) -> dict[str, Path]:
    """{controller: directory} of a process's cgroups; {"": dir} on cgroup v2.

    Read from /proc/<pid>/cgroup so it works with the cgroupfs and systemd drivers alike.
    """
    dirs: dict[str, Path] = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return dirs
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            directory = Path("/sys/fs/cgroup") / path.lstrip("/")
            if (directory / "cgroup.procs").exists():  # pure v2 (a v1 host's hybrid mount is elsewhere)
                dirs[""] = directory
            continue
        for controller in controllers.split(","):
            if controller in ("cpu", "cpuacct", "memory", "pids"):
                # Debian mounts "cpu,cpuacct" with "cpu" and "cpuacct" symlinks: try both spellings.
                for mount in (controller, controllers):
                    directory = Path("/sys/fs/cgroup") / mount / path.lstrip("/")
                    if directory.is_dir():
                        dirs[controller] = directory
                        break
    return dirs


def engine_accounting(running: RunningContainer) -> dict:
    """CPU (ns) and memory (bytes) the kernel charges to the container's cgroup."""
    dirs = running.cgroup_dirs
    out: dict = {}
    try:
        if "" in dirs:  # cgroup v2
            stat = _keyed((dirs[""] / "cpu.stat").read_text())
            out.update(source="cgroup v2", cpu_ns=stat["usage_usec"] * 1000, cpu_user_ns=stat["user_usec"] * 1000,
                       cpu_sys_ns=stat["system_usec"] * 1000,
                       memory_bytes=int((dirs[""] / "memory.current").read_text()))
        else:
            tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")  # cpuacct.stat counts USER_HZ ticks
            stat = _keyed((dirs["cpuacct"] / "cpuacct.stat").read_text())
            out.update(source="cgroup v1", cpu_ns=int((dirs["cpuacct"] / "cpuacct.usage").read_text()),
                       cpu_user_ns=int(stat["user"] * tick_ns), cpu_sys_ns=int(stat["system"] * tick_ns),
                       memory_bytes=int((dirs["memory"] / "memory.usage_in_bytes").read_text()))
    except (OSError, KeyError, ValueError):
        pass  # the container has gone; the sampler records what it could
    return out


def _keyed(text: str) -> dict[str, int]:
    return {key: int(value) for key, value in (line.split() for line in text.splitlines() if line.strip())}
