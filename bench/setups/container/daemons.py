"""The engine's daemons: what having Docker at all costs, whether one container runs or ten.

dockerd (the API, images, networks) and the containerd it starts (containers' records, shims)
stay resident for the whole host. The container setup declares them as its fixed-cost
processes, so the runner samples them apart from an instance's own processes.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from bench.roles import Role, RoleProcess
from bench.setups.container.engine import daemon_address

DOCKERD = Role("dockerd", "dockerd (Docker's daemon, once per host)", "#332288")
CONTAINERD = Role("containerd", "containerd (once per host)", "#88CCEE")
PIDFILE = "/var/run/docker.pid"  # written by the daemon behind /var/run/docker.sock


def _dockerd() -> psutil.Process | None:
    """The dockerd behind the local socket: its pidfile, else the only dockerd on the host.

    Other sessions may run dockerds inside containers: never guess between several.
    """
    if not daemon_address().startswith("unix://"):
        return None  # a remote engine: its daemons are not this host's cost
    try:
        process = psutil.Process(int(Path(PIDFILE).read_text().strip()))
        if process.name() == "dockerd":
            return process
    except (OSError, ValueError, psutil.Error):
        pass
    found = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "dockerd"]
    return found[0] if len(found) == 1 else None


def daemon_processes() -> list[RoleProcess]:
    """dockerd and its containerd (a child of dockerd, or the host's only containerd)."""
    dockerd = _dockerd()
    if dockerd is None:
        return []
    found = [RoleProcess(DOCKERD.key, dockerd)]
    try:
        children = [child for child in dockerd.children() if child.name() == "containerd"]
    except psutil.Error:
        children = []
    if not children:  # dockerd started with --containerd: a system containerd serves it
        children = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "containerd"][:2]
        children = children if len(children) == 1 else []
    found += [RoleProcess(CONTAINERD.key, child) for child in children]
    return found
