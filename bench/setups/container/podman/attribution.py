"""Which host processes a Podman container costs.

Podman itself exits once the container runs; what stays per container is conmon (the monitor
that holds the container's stdio and waits for its exit, Podman's counterpart of containerd's
shim) and the container's own processes under it. Rootless, with a published port, two more stay:
slirp4netns, a user-mode TCP/IP stack that gives the container's network namespace its way out,
and rootlessport, which listens on the host port and copies every connection into that namespace
(or, with port_handler slirp4netns, slirp4netns does that itself). Rootful Podman forwards a
published port with NAT rules only: no process on the request path. Rootless Podman also keeps one
pause process per user (it holds the user namespace every podman command joins): a fixed cost.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.setups.container.attribution import stable_processes
from bench.roles import APP, Role, RoleProcess
from bench.setups.container.podman.cli import Podman
from bench.setups.procutil import pin_process

CONMON = Role("conmon", "conmon (Podman's per-container monitor)", "#117733")
SLIRP4NETNS = Role("slirp4netns", "slirp4netns (user-mode network stack, rootless)", "#DDCC77")
ROOTLESSPORT = Role("rootlessport", "rootlessport (userland port forwarder, rootless)", "#44AA99")
PAUSE = Role("podman-pause", "Podman's pause process (rootless, once per user)", "#999933")
HELPER_NAMES = ("conmon", "slirp4netns", "rootlessport", "pasta")  # what a container may leave behind
RESCAN_S = 1.0  # a full process scan costs ~10 ms: at most once a second until the helpers are found


@dataclass
class RunningPodman:
    """What _terminate and the attribution need about one started Podman container."""

    podman: Podman
    name: str
    container_id: str
    init_pid: int
    conmon_pid: int
    netns: str  # the container's network namespace file ("" with the host network)
    cgroup_dirs: dict[str, Path]  # its own cgroups ({} rootless on cgroup v1: it has none)
    helpers_expected: tuple[str, ...] = ()  # role keys of the network helpers this variant has
    cpus: tuple[int, ...] = ()  # where helpers go once found: the app's CPUs, or all (pin_helpers false)
    scratch: object = None  # bench.setups.container.storage.Scratch
    known: dict[int, psutil.Process] = field(default_factory=dict)
    helpers: dict[int, str] = field(default_factory=dict)  # pid -> role key
    scanned_at: float = 0.0
    placed: set[int] = field(default_factory=set)

    def poll(self) -> int | None:
        """Exit code once the container has stopped, like Popen.poll (the readiness wait asks)."""
        try:
            process = psutil.Process(self.init_pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        result = self.podman.run("inspect", "--format", "{{.State.ExitCode}}", self.name, check=False)
        return int(result.stdout.strip()) if result.stdout.strip().lstrip("-").isdigit() else -1


def processes(running: RunningPodman) -> list[RoleProcess]:
    """The container's host processes by role; helpers are placed on their CPUs when first seen."""
    found = [RoleProcess(CONMON.key, process) for process in stable_processes(running.known, [running.conmon_pid])]
    found += [RoleProcess(APP.key, process) for process in stable_processes(running.known, _app_pids(running))]
    found += [RoleProcess(running.helpers.get(process.pid, ROOTLESSPORT.key), process)
              for process in stable_processes(running.known, _helper_pids(running))]
    for role_process in found:
        pid = role_process.process.pid
        if running.cpus and role_process.role != APP.key and pid not in running.placed \
                and pin_process(pid, running.cpus):
            running.placed.add(pid)
    return found


def _app_pids(running: RunningPodman) -> list[int]:
    """Every process of the container: conmon's descendants (its init and whatever that starts;
    in the container's pid namespace orphans are reparented to its init, so none escapes)."""
    try:
        return [child.pid for child in psutil.Process(running.conmon_pid).children(recursive=True)]
    except psutil.Error:
        return []


def _helper_pids(running: RunningPodman) -> list[int]:
    if not running.helpers_expected:
        return []
    alive = [pid for pid in running.helpers if psutil.pid_exists(pid)]
    if set(running.helpers_expected) <= {running.helpers[pid] for pid in alive} \
            or time.monotonic() - running.scanned_at < RESCAN_S:
        return alive
    running.scanned_at = time.monotonic()
    running.helpers = scan_helpers(running.netns, running.init_pid)
    return list(running.helpers)


def scan_helpers(netns: str, init_pid: int) -> dict[int, str]:
    """{pid: role} of the slirp4netns serving the namespace file `netns` and of the rootlessport pair
    whose child lives in the container's network namespace."""
    found: dict[int, str] = {}
    container_netns = _netns_inode(init_pid)
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "slirp4netns" and netns and netns in cmdline:
            found[process.pid] = SLIRP4NETNS.key
        elif cmdline[:1] == ["rootlessport-child"] and container_netns is not None \
                and _netns_inode(process.pid) == container_netns:
            found[process.pid] = ROOTLESSPORT.key
            found[process.info["ppid"]] = ROOTLESSPORT.key  # the parent listens on the host port
    return found


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def own_cgroup_dirs(dirs: dict[str, Path], container_id: str) -> dict[str, Path]:
    """The container's cgroups only if they are its own (named after it): rootless on cgroup v1 it
    stays in the runner's cgroups, whose counters are not the container's."""
    return dirs if dirs and all(container_id in str(path) for path in dirs.values()) else {}


def pause_processes(uid: int) -> list[RoleProcess]:
    """Rootless Podman's pause process of that user (catatonit -P, or podman's own), if it runs."""
    found = []
    for process in psutil.process_iter(["uids", "cmdline"]):
        uids, cmdline = process.info["uids"], process.info["cmdline"] or []
        if uids is not None and uids.real == uid and cmdline and cmdline[-1] == "-P" \
                and os.path.basename(cmdline[0]) in ("catatonit", "podman"):
            found.append(RoleProcess(PAUSE.key, process))
    return found
