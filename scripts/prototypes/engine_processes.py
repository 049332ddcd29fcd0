#!/usr/bin/env python3
"""Prototype (issue 16): the host processes a Docker container costs, and the shims failed starts leave.

    engine_processes.py roles CONTAINER      # each host process of a running container, its role and memory
    engine_processes.py leftovers            # containerd shims whose container Docker no longer knows
    engine_processes.py leftovers --clean --only-layerbench   # remove those (by pid, then containerd's records)

Working code for the lead to fold into the container setup; not imported by the package.

How a gVisor (runsc) container looks on the host (Docker 20.10, runsc 20240729, systrap):
    containerd-shim-runc-v2 -namespace moby -id <ID>     parent of both below; stays outside the container's cgroup
      runsc-gofer ... gofer --bundle=.../<ID> ...        file proxy for the sandbox; own pid namespace
      runsc-sandbox ... boot --bundle=.../<ID> ...       the sentry (gVisor's kernel); Docker's State.Pid
        [exe] x N                                        systrap stubs: the app's address spaces run here
The gofer, the sentry and the stubs are in the container's cgroup (/docker/<ID>); the shim is not.
With runc, State.Pid is the app itself and the shim is its parent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil

CONTAINERD_SOCKET = "/var/run/docker/containerd/containerd.sock"  # dockerd's own containerd
NAMESPACE = "moby"  # the containerd namespace dockerd uses
SHIM_NAME = "containerd-shim-runc-v2"  # runc, runsc and crun all run under this shim in Docker 20.10
APP_SIGNATURE = "from bench.app.server import main"  # bench.images.rootfs.APP_SIGNATURE
SHIM_MIN_AGE_S = 10.0  # a younger shim may belong to a container Docker is creating right now

ROLE_SHIM = "runtime"  # per-container engine piece (the project's ROLE_RUNTIME)
ROLE_SENTRY = "sentry"  # gVisor's user-space kernel: a role of its own in issue 16
ROLE_GOFER = "gofer"  # gVisor's file proxy, one per sandbox
ROLE_APP = "app"


@dataclass
class HostProcess:
    pid: int
    role: str
    name: str
    rss_bytes: int
    uss_bytes: int  # memory only this process maps (psutil's memory_full_info)
    pss_bytes: int  # shared pages divided among the processes that map them
    threads: int


@dataclass
class Shim:
    pid: int
    container_id: str
    age_s: float
    descendants: list[int] = field(default_factory=list)
    rss_bytes: int = 0  # shim + descendants
    app_args: list[str] = field(default_factory=list)  # from containerd's record of the container


def shim_container_id(cmdline: list[str]) -> str | None:
    """The -id of a containerd-shim-runc-v2 command line in dockerd's namespace, else None."""
    if not cmdline or not cmdline[0].endswith(SHIM_NAME):
        return None
    flags = {cmdline[i]: cmdline[i + 1] for i in range(1, len(cmdline) - 1) if cmdline[i].startswith("-")}
    return flags.get("-id") if flags.get("-namespace") == NAMESPACE else None


def role_of(process: psutil.Process, state_pid: int) -> str:
    """The role of one host process of a container, from its name and its place in the tree."""
    argv0 = (process.cmdline() or [""])[0]
    if argv0.endswith(SHIM_NAME):
        return ROLE_SHIM
    if argv0 == "runsc-sandbox":
        return ROLE_SENTRY
    if argv0 == "runsc-gofer":
        return ROLE_GOFER
    return ROLE_APP  # runc's app itself, or under gVisor a systrap stub running the app's code


def container_processes(container_id: str, state_pid: int) -> list[psutil.Process]:
    """Every host process of one container: its shim and everything under the shim.

    The shim is found from Docker's State.Pid (its parent, for runc and runsc alike); the gofer
    is the shim's other child under gVisor, which the cgroup also holds but State.Pid does not lead to.
    """
    top = psutil.Process(state_pid)
    shim = top.parent()
    if shim is None or shim_container_id(shim.cmdline()) != container_id:
        shim = next((p for p in psutil.process_iter(["cmdline"])
                     if shim_container_id(p.info["cmdline"] or []) == container_id), None)
    if shim is None:
        return [top, *top.children(recursive=True)]
    return [shim, *shim.children(recursive=True)]


def measure(processes: list[psutil.Process], state_pid: int) -> list[HostProcess]:
    rows = []
    for process in processes:
        try:
            with process.oneshot():
                memory = process.memory_full_info()
                rows.append(HostProcess(process.pid, role_of(process, state_pid),
                                        (process.cmdline() or [process.name()])[0], memory.rss, memory.uss,
                                        memory.pss, process.num_threads()))
        except psutil.Error:
            continue
    return rows


# ---- leftovers: shims whose container Docker forgot ------------------------------------------


def docker_container_ids() -> set[str]:
    result = subprocess.run(["docker", "ps", "-a", "-q", "--no-trunc"], capture_output=True, text=True,
                            timeout=30, check=True)
    return set(result.stdout.split())


def containerd_args(container_id: str) -> list[str]:
    """The container's process args from containerd's record ([] when it has none)."""
    ctr = shutil.which("ctr")
    if ctr is None:
        return []
    result = subprocess.run([ctr, "--address", CONTAINERD_SOCKET, "-n", NAMESPACE, "containers", "info",
                             container_id], capture_output=True, text=True, timeout=10, check=False)
    try:
        return json.loads(result.stdout)["Spec"]["process"]["args"]
    except (ValueError, KeyError, TypeError):
        return []


def orphan_shims(known_ids: set[str], min_age_s: float = SHIM_MIN_AGE_S) -> list[Shim]:
    """Shims in dockerd's namespace whose -id is no container Docker lists (after failed starts)."""
    found = []
    now = time.time()
    for process in psutil.process_iter(["cmdline", "create_time"]):
        container_id = shim_container_id(process.info["cmdline"] or [])
        if container_id is None or container_id in known_ids:
            continue
        age_s = now - process.info["create_time"]
        if age_s < min_age_s:
            continue
        try:
            descendants = process.children(recursive=True)
            rss = sum(p.memory_info().rss for p in [process, *descendants] if p.is_running())
        except psutil.Error:
            continue
        found.append(Shim(process.pid, container_id, age_s, [p.pid for p in descendants], rss,
                          containerd_args(container_id)))
    return found


def remove_shim(shim: Shim) -> list[str]:
    """Kill a leftover shim's processes by pid (deepest first), then drop containerd's records.

    runsc refuses to signal a container in state "created" (ctr tasks kill/delete --force fail with
    'cannot signal container ... in state created'), so the processes go first, by pid.
    """
    done = []
    for pid in reversed(shim.descendants):
        try:
            psutil.Process(pid).kill()
            done.append(f"killed pid {pid}")
        except psutil.Error:
            pass
    psutil.wait_procs([p for p in map(_process_or_none, shim.descendants) if p], timeout=5)
    ctr = shutil.which("ctr")
    if ctr:
        for what in ("tasks", "containers"):
            result = subprocess.run([ctr, "--address", CONTAINERD_SOCKET, "-n", NAMESPACE, what, "delete",
                                     shim.container_id], capture_output=True, text=True, timeout=30, check=False)
            if result.returncode == 0:
                done.append(f"ctr {what} delete {shim.container_id[:12]}")
    shim_process = _process_or_none(shim.pid)
    if shim_process is not None:
        try:
            shim_process.wait(timeout=3)  # the shim exits once containerd deleted its task
        except psutil.TimeoutExpired:
            shim_process.kill()
            done.append(f"killed shim pid {shim.pid}")
    return done


def _process_or_none(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


# ---- command line ---------------------------------------------------------------------------


def _inspect(container: str) -> tuple[str, int]:
    result = subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{.State.Pid}}", container], capture_output=True,
                            text=True, timeout=30, check=True)
    container_id, pid = result.stdout.split()
    return container_id, int(pid)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    roles = commands.add_parser("roles")
    roles.add_argument("container")
    leftovers = commands.add_parser("leftovers")
    leftovers.add_argument("--clean", action="store_true")
    leftovers.add_argument("--only-layerbench", action="store_true", help="only shims whose container ran the app")
    leftovers.add_argument("--ids", nargs="+", default=(), help="only these container ids (prefixes)")
    args = parser.parse_args(argv)
    if args.command == "roles":
        container_id, state_pid = _inspect(args.container)
        rows = measure(container_processes(container_id, state_pid), state_pid)
        for row in rows:
            print(f"{row.pid:>7} {row.role:<8} {row.name:<32} rss {row.rss_bytes / 2**20:6.1f} MiB  "
                  f"uss {row.uss_bytes / 2**20:6.1f} MiB  pss {row.pss_bytes / 2**20:6.1f} MiB  threads {row.threads}")
        for role in sorted({row.role for row in rows}):
            picked = [row for row in rows if row.role == role]
            rss, uss, pss = (sum(getattr(row, key) for row in picked) / 2**20
                             for key in ("rss_bytes", "uss_bytes", "pss_bytes"))
            print(f"  {role:<8} rss {rss:6.1f} MiB  uss {uss:6.1f} MiB  pss {pss:6.1f} MiB")
        return 0
    for shim in orphan_shims(docker_container_ids()):
        if args.ids and not shim.container_id.startswith(tuple(args.ids)):
            continue
        ours = any(APP_SIGNATURE in arg for arg in shim.app_args)
        print(f"shim pid {shim.pid} container {shim.container_id[:12]} age {shim.age_s:.0f} s, "
              f"{len(shim.descendants)} processes under it, rss {shim.rss_bytes / 2**20:.1f} MiB, "
              f"{'layerbench app' if ours else 'not layerbench: ' + ' '.join(shim.app_args[:2])}")
        if args.clean and (ours or not args.only_layerbench):
            print("  " + "; ".join(remove_shim(shim)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
