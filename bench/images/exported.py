"""A user's local image, opened up: its configuration (`docker image inspect`) and its root
filesystem (`docker export` of a container created from it, never started), so a bare process
and a VM can run the very files the container runs. Nothing is ever pulled.

The root filesystem is extracted once per image id under `$XDG_CACHE_HOME/layerbench/image-rootfs/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.errors import SetupError
from bench.images import cache_root
from bench.images.docker_image import LABELS, RUNNER_PID_LABEL
from bench.scratch import build_folder

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what Docker gives an image without one
# Character devices a program commonly opens; a chroot has no devtmpfs, so they are made in the tree.
_DEVICES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9)}


@dataclass(frozen=True)
class ImageConfig:
    """What an image says about how it runs."""

    reference: str
    image_id: str
    size_bytes: int
    argv: list[str]  # Entrypoint + Cmd
    env: dict[str, str] = field(default_factory=dict)
    user: str = ""  # as written: "", "name", "uid", "name:group", "uid:gid"
    workdir: str = "/"
    ports: tuple[int, ...] = ()  # exposed TCP ports


def _client():
    try:
        import docker
    except ImportError:
        raise SetupError("the docker Python package is missing: pip install 'docker>=7.1'") from None
    try:
        return docker.from_env(timeout=120)
    except Exception as error:
        raise SetupError(f"no Docker daemon answers, so image details cannot be read: {error}") from None


def parse_config(reference: str, attrs: dict) -> ImageConfig:
    """The run configuration from `docker image inspect` output (attrs of an Image)."""
    config = attrs.get("Config") or {}
    argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    env = dict(item.split("=", 1) for item in (config.get("Env") or []) if "=" in item)
    env.setdefault("PATH", DEFAULT_PATH)
    ports = sorted(int(key.split("/")[0]) for key in (config.get("ExposedPorts") or {})
                   if key.endswith("/tcp") and key.split("/")[0].isdigit())
    return ImageConfig(reference=reference, image_id=str(attrs.get("Id", "")), size_bytes=int(attrs.get("Size") or 0),
                       argv=argv, env=env, user=str(config.get("User") or ""),
                       workdir=str(config.get("WorkingDir") or "/"), ports=tuple(ports))


def inspect_image(reference: str, client=None) -> ImageConfig:
    """The image's configuration; SetupError when it is not present locally (nothing is pulled)."""
    import docker.errors

    own = client is None
    client = client or _client()
    try:
        attrs = client.images.get(reference).attrs
    except docker.errors.ImageNotFound:
        raise SetupError(f"image {reference} is not present locally and layerbench never pulls: build it or "
                         f"`docker load` it first (docker image ls lists what is here)") from None
    except docker.errors.APIError as error:
        raise SetupError(f"cannot inspect image {reference}: {error.explanation or error}") from None
    finally:
        if own:
            client.close()
    config = parse_config(reference, attrs)
    if not config.argv:
        raise SetupError(f"image {reference} has neither an entrypoint nor a command: nothing to start")
    return config


def export_root(config: ImageConfig, cache_dir: Path | None = None,
                progress: Callable[[str], None] = lambda m: None) -> Path:
    """The image's root filesystem as a directory (extracted once per image id)."""
    final = (Path(cache_dir) if cache_dir is not None else cache_root()) / "image-rootfs" / \
        config.image_id.removeprefix("sha256:")[:32]
    if final.is_dir():
        progress(f"root filesystem of {config.reference} already extracted")
        return final
    if os.geteuid() != 0:
        raise SetupError(f"extracting {config.reference}'s files keeps their owners, which needs root")
    progress(f"extracting the root filesystem of {config.reference}")
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = build_folder(final.parent)  # named after this runner: bench clean removes it once killed
    try:
        _export_into(config, temp)
        _make_devices(temp / "dev")
        os.chmod(temp, 0o755)
        try:
            os.rename(temp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final


def _export_into(config: ImageConfig, target: Path) -> None:
    """docker export of a container created (never started) from the image, unpacked by GNU tar."""
    client = _client()
    container = None
    try:
        # An entrypoint is required to create a container from an image without one; it never runs.
        container = client.containers.create(config.image_id, entrypoint=["/layerbench-export-only"], command=[],
                                             labels={**LABELS, RUNNER_PID_LABEL: str(os.getpid())},
                                             network_disabled=True)
        tar = subprocess.Popen(["tar", "-x", "-p", "--numeric-owner", "-C", str(target), "-f", "-"],
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for chunk in container.export():
                tar.stdin.write(chunk)
        finally:
            tar.stdin.close()
            errors = tar.stderr.read().decode(errors="replace")
            tar.stderr.close()
            status = tar.wait(timeout=120)
        if status != 0:
            raise SetupError(f"unpacking {config.reference} failed: {' '.join(errors.split())[:300]}")
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # `bench clean` finds it by its label if the daemon went away
                pass
        client.close()


def _make_devices(dev: Path) -> None:
    import stat

    dev.mkdir(exist_ok=True)
    for name, (major, minor) in _DEVICES.items():
        node = dev / name
        if node.exists() or node.is_symlink():
            continue
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(node, 0o666)


def _table(path: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in path.read_text(errors="replace").splitlines() if line and ":" in line]
    except OSError:
        return []


def resolve_user(root: Path, user: str) -> tuple[int, int]:
    """(uid, gid) for an image's USER, looked up in its own /etc/passwd and /etc/group as Docker does:
    "" is root; a number not in passwd has group 0. SetupError for a name the image does not know."""
    name, _, group = user.partition(":")
    passwd, groups = _table(root / "etc" / "passwd"), _table(root / "etc" / "group")
    if not name:
        uid, gid = 0, 0
    else:
        entry = next((row for row in passwd if len(row) > 3 and (row[0] == name or row[2] == name)), None)
        if entry is not None:
            uid, gid = int(entry[2]), int(entry[3])
        elif name.isdigit():
            uid, gid = int(name), 0
        else:
            raise SetupError(f"the image's user {name!r} is not in its /etc/passwd")
    if group:
        found = next((row for row in groups if len(row) > 2 and (row[0] == group or row[2] == group)), None)
        if found is not None:
            gid = int(found[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise SetupError(f"the image's group {group!r} is not in its /etc/group")
    return uid, gid
