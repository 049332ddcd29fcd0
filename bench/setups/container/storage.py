"""Where a container's scratch files go (the app's /tmp, where /io writes): the variant's `scratch`.

    tmpfs    a tmpfs at /tmp on a read-only root: RAM, and fsync does nothing
    overlay  a writable root: /tmp is the overlayfs writable layer, on the engine's data directory
    volume   a named volume at /tmp (one per container, created and removed with it): a plain
             directory in the engine's volume store, bind-mounted, so no overlayfs on the path
    bind     a host directory bind-mounted at /tmp (made under the host's temp dir, named after the
             runner as bench.scratch names every temp folder, removed after)

The same kinds for Docker and Podman: this module makes and removes the volume or the directory,
gives each engine its arguments, and says in words which host filesystem and cache the writes reach
(read from /proc/self/mountinfo, not assumed).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.scratch import owned_folder

SCRATCH_KINDS = ("tmpfs", "overlay", "volume", "bind")
TARGET = "/tmp"  # where the app's temp files go inside the container
TMPFS_SIZE = "size=64m"


@dataclass
class Scratch:
    """One container's scratch space: its kind, and the volume or host directory made for it."""

    kind: str
    volume: str | None = None  # the named volume's name (kind volume)
    directory: Path | None = None  # the host directory (kind bind)

    @property
    def writable_root(self) -> bool:
        """overlay writes into the container's own root; the others keep the root read-only."""
        return self.kind == "overlay"


def make(kind: str, prefix: str) -> Scratch:
    """The scratch space of one container. A bind directory is made now (mode 1777, like /tmp: the
    container's user, whoever it is on the host, writes there); a volume gets a fresh name starting
    with prefix (the run's), so whatever undoes a launch removes it by name; the engine creates it."""
    if kind == "bind":
        directory = owned_folder("bind")  # bench clean removes it once its runner is gone
        directory.chmod(0o1777)
        return Scratch(kind, directory=directory)
    if kind == "volume":
        return Scratch(kind, volume=re.sub(r"[^a-zA-Z0-9_.-]", "-", f"{prefix}-{secrets.token_hex(4)}-tmp"))
    return Scratch(kind)


def remove_directory(scratch: Scratch | None) -> None:
    """Remove a bind directory (the app deletes its own files; anything left goes too)."""
    if scratch is not None and scratch.directory is not None:
        shutil.rmtree(scratch.directory, ignore_errors=True)


def drop_docker(client, scratch: Scratch | None) -> None:
    """Remove a Docker container's volume (once the container is gone) and bind folder; quietly: a
    volume the daemon could not remove now, `bench clean` finds by its labels."""
    if scratch is not None and scratch.volume is not None and client is not None:
        try:
            client.volumes.get(scratch.volume).remove(force=True)
        except Exception:
            pass
    remove_directory(scratch)


def docker_data_root(client) -> str | None:
    """dockerd's data directory (its overlay layers and volumes live under it)."""
    try:
        return str(client.info().get("DockerRootDir") or "") or None
    except Exception:
        return None


def docker_kwargs(scratch: Scratch | None, read_only: bool, labels: dict[str, str]) -> dict:
    """The Docker SDK's run arguments for the scratch space (None: a tmpfs, as a runtime probe uses)."""
    kind = scratch.kind if scratch is not None else "tmpfs"
    if kind == "tmpfs":
        return {"tmpfs": {TARGET: TMPFS_SIZE}} if read_only else {}
    if kind == "overlay":
        return {}
    from docker.types import Mount

    if kind == "volume":  # created by dockerd on create, with our labels (bench clean finds it)
        return {"mounts": [Mount(TARGET, scratch.volume, type="volume", labels=labels)]}
    return {"mounts": [Mount(TARGET, str(scratch.directory), type="bind")]}


def podman_args(scratch: Scratch | None, read_only: bool) -> list[str]:
    """`podman create` arguments for the scratch space (a volume must exist: podman volume create)."""
    kind = scratch.kind if scratch is not None else "tmpfs"
    if kind == "tmpfs":
        return ["--tmpfs", f"{TARGET}:rw,{TMPFS_SIZE}"] if read_only else []
    if kind == "overlay":
        return []
    if kind == "volume":
        return ["--volume", f"{scratch.volume}:{TARGET}"]
    return ["--volume", f"{scratch.directory}:{TARGET}"]


# ---- in words: which filesystem and cache the writes reach ------------------------------------

def filesystem_of(path: str | Path) -> str:
    """"ext4 on /dev/vda" for the mount that holds path (the longest mount point above it)."""
    best, words = "", "an unknown filesystem"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return words
    target = os.path.realpath(path)
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        fs_type, source = line.split(" - ", 1)[1].split()[:2]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, words = mount_point, f"{fs_type} on {source}"
    return words


def explain_docker(options, data_root: str | None) -> str:
    """What a write to the app's /tmp goes through in a Docker variant (its data root: docker info)."""
    return explain(options.scratch, f"{data_root}/overlay2" if data_root else None,
                   f"{data_root}/volumes" if data_root else None)


def explain(kind: str, engine_root: str | None, volume_root: str | None) -> str:
    """What a write to /tmp goes through for this kind; engine_root and volume_root are the engine's
    data and volume directories on the host (None: unknown)."""
    if kind == "tmpfs":
        return (" Its /tmp is a tmpfs on a read-only root: writes stay in RAM and fsync returns at once, so "
                "/io measures the system-call path, not storage.")
    if kind == "overlay":
        where = f" ({filesystem_of(engine_root)}, under {engine_root})" if engine_root else ""
        return (" Its root is writable and /tmp is the overlayfs writable layer: a new file is created in the "
                f"upper directory on the host filesystem{where}, through overlayfs, then the host's page cache; "
                "fsync reaches that filesystem's disk.")
    if kind == "volume":
        where = f" ({filesystem_of(volume_root)}, under {volume_root})" if volume_root else ""
        return (" Its /tmp is a named volume: a plain directory in the engine's volume store on the host"
                f"{where}, bind-mounted, so writes skip overlayfs and go through the host's page cache; fsync "
                "reaches that filesystem's disk.")
    directory = tempfile.gettempdir()
    return (f" Its /tmp is a bind mount of a fresh directory under the host's {directory} "
            f"({filesystem_of(directory)}): the same filesystem and page cache the bare app writes to, seen "
            "through the container's mount namespace; fsync reaches that filesystem's disk.")
