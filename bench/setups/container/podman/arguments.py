"""The locked-down `podman run` of the app, as plain data (unit-tested without an engine).

The same lock-down as the Docker variant: the app's user (65534 for layerbench's apps), every
capability dropped, no-new-privileges, a read-only root with the scratch space the variant names,
ports published on one host address only (127.0.0.1 unless a split run names another). What differs
is what the host allows: rootless on cgroup v1 there is no cgroup to pin or limit with (the podman
command is pinned instead, and its children inherit it), and a root without CAP_SYS_RESOURCE
cannot raise the container's rlimits to Podman's defaults (see `ulimit_args`).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from bench.apps.base import Start
from bench.setups.container import storage
from bench.setups.container.engine import LABEL, PID_LABEL, RUN_LABEL
from bench.setups.container.shims import RUN_ENV

CAP_SYS_RESOURCE = 24
# Podman 4.3 lowers its own RLIMIT_NPROC to 32768 when it starts (strace: setrlimit(RLIMIT_NPROC,
# 32768)); its children, the OCI runtime among them, cannot give a container more than that.
PODMAN_NPROC_LIMIT = 32768


@dataclass(frozen=True)
class RunPlan:
    """What the variant asks of one `podman run`, besides the app's own start."""

    name: str
    run_id: str
    image_id: str
    runtime: str
    network: str  # "bridge" (a published port) or "host"
    address: str  # the one host address a published port binds
    host_port: int
    cgroups: bool  # the container gets cgroups of its own (False: rootless on cgroup v1)
    cpuset: str  # "1" or "0,1": the app's CPUs
    cpus: float | None = None
    memory: str | None = None
    port_handler: str | None = None  # rootless: "slirp4netns" to forward the port through slirp4netns itself
    ulimits: tuple[str, ...] = ()


def run_args(plan: RunPlan, start: Start, scratch: storage.Scratch | None, writable_root: bool) -> list[str]:
    """The arguments after `podman run --detach`: options, the image id, the app's command if it has one."""
    labels = {LABEL: "1", RUN_LABEL: plan.run_id, PID_LABEL: str(os.getpid())}
    read_only = start.read_only_root and not writable_root
    args = ["--name", plan.name, *(arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")),
            "--runtime", plan.runtime, "--cap-drop", "all", "--security-opt", "no-new-privileges",
            "--env", f"{RUN_ENV}={plan.run_id}"]
    args += ["--read-only"] if read_only else []
    args += storage.podman_args(scratch, read_only)
    args += ["--user", f"{start.user[0]}:{start.user[1]}"] if start.user is not None else []
    args += [arg for cap in start.cap_add for arg in ("--cap-add", cap)]
    if plan.cgroups:
        args += ["--cpuset-cpus", plan.cpuset]
        args += ["--cpus", f"{plan.cpus:g}"] if plan.cpus is not None else []
        args += ["--memory", plan.memory] if plan.memory is not None else []
    args += [arg for limit in plan.ulimits for arg in ("--ulimit", limit)]
    if plan.network == "host":
        args += ["--network", "host"]
    else:
        args += ["--publish", f"{plan.address}:{plan.host_port}:{start.port}"]
        if plan.port_handler == "slirp4netns":
            args += ["--network", "slirp4netns:port_handler=slirp4netns"]
    return [*args, plan.image_id, *(start.argv or [])]


def ulimit_args(rootless: bool) -> tuple[str, ...]:
    """`--ulimit` values for a rootful container where root lacks CAP_SYS_RESOURCE (this kind of
    host: it is not in the bounding set). Podman's defaults (nofile and nproc 1048576) are above
    the hard limits there, and the runtime's setrlimit fails ("operation not permitted"); the limits
    the runner has (nofile), capped where Podman caps itself (nproc), are what Docker's containers
    get here too. Rootless Podman already uses the current hard limits; root with the capability
    keeps Podman's defaults."""
    if rootless or _has_capability(CAP_SYS_RESOURCE):
        return ()
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], PODMAN_NPROC_LIMIT)
    return tuple(f"{name}={_limit(value)}:{_limit(value)}" for name, value in (("nofile", nofile), ("nproc", nproc)))


def _limit(value: int) -> str:
    return "-1" if value == resource.RLIM_INFINITY else str(value)


def _has_capability(bit: int) -> bool:
    """True when this process's effective capabilities include `bit` (/proc/self/status CapEff)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False
