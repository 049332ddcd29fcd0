"""The words and facts of a Podman variant: what a class hears, what the report explains, what a
reader must know before trusting the figures, and what each instance records."""

from __future__ import annotations

import os
from pathlib import Path

from bench.setups.container.engine import LABEL, PID_LABEL, RUN_LABEL
from bench.setups.container.podman.cli import words as podman_words

__all__ = ["podman_words"]

COLOUR = "#8C510A"  # rootful Podman
ROOTLESS_COLOUR = "#BF812D"


def host_cgroup_version() -> str:
    """"v2" when /sys/fs/cgroup is the unified hierarchy alone, else "v1" (legacy or hybrid)."""
    return "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"


def _user_networking(options) -> str:
    if options.port_handler == "slirp4netns":
        return "slirp4netns forwarding the port"
    return "rootlessport + slirp4netns"


def engine_box(options, rootless_v1: bool) -> str:
    """The detail of the layer-stack box: engine, runtime, isolation, network path."""
    isolation = "user namespace; no cgroups" if rootless_v1 else (
        "user namespace + cgroups" if options.rootless else "namespaces + cgroups")
    parts = ["podman rootless" if options.rootless else "podman", "no daemon", options.runtime, isolation]
    if options.network == "bridge":
        parts.append(_user_networking(options) if options.rootless else "NAT, no proxy")
    return "; ".join(parts)


def stack(options) -> str:
    """The path a request takes."""
    if options.network == "host":
        middle = "user namespace + namespaces + overlayfs" if options.rootless else "namespaces + cgroups + overlayfs"
        return f"app → {middle} (host network) → host kernel"
    if options.rootless:
        return ("app → user namespace + namespaces + overlayfs (+ a published port through "
                f"{_user_networking(options)}, user-space processes that copy every byte) → host kernel")
    return "app → namespaces + cgroups + overlayfs (+ NAT for a published port, no userland proxy) → host kernel"


def narration(options) -> str:
    """One or two sentences a class hears when its first trial starts."""
    said = ("the same app in a container run by Podman, which has no daemon: the podman command sets the container "
            "up and exits, and a small monitor, conmon, stays with it.")
    if options.rootless:
        said += (" Rootless: run by an ordinary user, its root mapped through a user namespace, its network reached "
                 "through user-space helpers that copy every packet.")
    return said


def colour(options) -> str:
    return ROOTLESS_COLOUR if options.rootless else COLOUR


def explanation(options, rootless_v1: bool) -> str:
    """Where this variant's cost comes from, engine and isolation (network, runtime and storage follow)."""
    said = ("The app is a host process in namespaces, like Docker's container, from the same image. Podman has no "
            "daemon: each podman command reads the engine's state from disk, does its work and exits, so start-up "
            "pays a podman process instead of an API call, and nothing stays resident per host. conmon, one small "
            "process per container, holds its output and waits for its exit (Docker's containerd shim does that).")
    if options.rootless:
        said += (" Rootless, everything runs as the unprivileged user layerbench-rootless: a user namespace maps the "
                 "container's users onto that user's subordinate ids, so root inside is nobody special outside, and "
                 "one pause process per user keeps that namespace for every later podman command.")
        if rootless_v1:
            said += (" On this cgroup v1 host a rootless container gets no cgroup of its own: no CPU or memory limit "
                     "can apply, and it is pinned by CPU affinity inherited from the podman command.")
    return said


def network(options) -> str:
    """The network path in words."""
    if options.network == "host":
        return " With the host network it shares the host's stack: nothing is on the request path."
    if not options.rootless:
        return (" A published port is forwarded with NAT rules (netavark): the kernel rewrites each packet, and no "
                "userland proxy copies bytes, unlike Docker's docker-proxy.")
    if options.port_handler == "slirp4netns":
        return (" The published port is forwarded by slirp4netns itself: every byte crosses its user-mode TCP/IP "
                "stack (libslirp), which terminates the connection on the host and opens one again inside the "
                "container's network namespace through a tap device.")
    return (" The published port is held by rootlessport, a userland forwarder: it accepts each connection on the "
            "host and copies the bytes into a socket its child opened inside the container's network namespace, "
            "one more copy like docker-proxy's. slirp4netns, the namespace's user-mode network stack, carries the "
            "container's own outgoing traffic, not these requests.")


def caveats(options, rootless_v1: bool) -> list[str]:
    found = []
    if rootless_v1:
        found.append("Rootless Podman on a cgroup v1 host: the container has no cgroup of its own, so the engine's "
                     "accounting (cgroup CPU and memory) is missing for it and it is pinned by CPU affinity, not a "
                     "cpuset; the host's per-process figures are complete.")
    return found


def label_args(run_id: str) -> list[str]:
    """--label arguments that mark what a runner made (bench clean finds it by them)."""
    labels = {LABEL: "1", RUN_LABEL: run_id, PID_LABEL: str(os.getpid())}
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def refused(podman, address: str, port: int, stderr: str) -> str:
    """The one-line error of a `podman run` that failed."""
    said = podman_words(stderr)
    if "address already in use" in said:
        return f"port {address}:{port} is taken; try again ({said})"
    return f"{podman.who} could not start the container: {said}"


def facts(setup, running, state: dict, args: list[str]) -> dict:
    """What an instance records: the Docker variant's facts, and Podman's own."""
    options, info = setup.options, setup._info
    host, store = info.get("host") or {}, info.get("store") or {}
    slirp = (host.get("slirp4netns") or {}).get("version", "").splitlines()
    return {
        "engine": "podman", "rootless": options.rootless, "podman_user": setup.user.name,
        "podman_version": (info.get("version") or {}).get("Version"), "cgroup_version": host.get("cgroupVersion"),
        "storage_driver": store.get("graphDriverName"), "network_backend": host.get("networkBackend"),
        "slirp4netns": slirp[0] if slirp and options.rootless else None,
        "port_handler": options.port_handler if options.rootless and options.network == "bridge" else None,
        "container_id": running.container_id, "container_name": running.name, "init_pid": running.init_pid,
        "conmon_pid": running.conmon_pid, "own_cgroups": bool(running.cgroup_dirs),
        "image_tag": setup._image.tag, "image_id": setup._image.image_id, "image_size_bytes": setup._image.size_bytes,
        "network": options.network, "cpus": options.cpus, "memory": options.memory, "base_image": options.base_image,
        "scratch": options.scratch, "scratch_volume": running.scratch.volume if running.scratch else None,
        "scratch_dir": str(running.scratch.directory) if running.scratch and running.scratch.directory else None,
        "read_only": "--read-only" in args, "runtime": options.runtime,
        "user": args[args.index("--user") + 1] if "--user" in args else "the image's own",
        "ulimits": [args[i + 1] for i, arg in enumerate(args) if arg == "--ulimit"],
        "cpuset": args[args.index("--cpuset-cpus") + 1] if "--cpuset-cpus" in args else None,
        "affinity": ",".join(map(str, setup.pinning.app_cpus)),
    }
