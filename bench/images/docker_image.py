"""The container image: the rootfs imported as a FROM-scratch image (no registry needed).

`docker import` of a tarball of the rootfs, with the rootfs's environment, an unprivileged
user and the app as CMD applied as image changes. Tagged `layerbench/app:<rootfs digest>`, so an
image is built once per rootfs and reused while the tag exists. Nothing is ever pulled.

Optionally, for users with a registry, `base_image` builds `FROM <base>` plus a COPY of the app
instead (the app then runs that image's interpreter, not the host's).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.app.command import APP_DIR, APP_PORT_IN_GUEST, PACKAGE_PARENT, app_argv
from bench.images.rootfs import NOBODY_ID, Rootfs, build_rootfs, rootfs_digest
from bench.scratch import owned_temporary

REPOSITORY = "layerbench/app"
LABELS = {"layerbench": "1"}
# The container setup's own label (engine.PID_LABEL): `bench clean` removes what a dead runner left.
RUNNER_PID_LABEL = "layerbench.runner-pid"
APP_PORT = APP_PORT_IN_GUEST  # the port the image's CMD listens on
BASE_IMAGE_PYTHON = "/usr/local/bin/python3"  # where the official python:3.x-slim images keep it


@dataclass(frozen=True)
class DockerImage:
    """An image ready to run, and the interpreter path the app command must use in it."""

    image_id: str
    tag: str
    size_bytes: int  # as the engine reports it (docker image inspect .Size)
    python: str  # absolute interpreter path inside the image
    built: bool  # False when an image with this tag was already present

    def app_argv(self, host: str, port: int) -> list[str]:
        """The command that runs the app in this image, listening on host:port."""
        return app_argv(self.python, host, port)


def ensure_image(client, base_image: str | None = None, cache_dir: Path | None = None,
                 progress: Callable[[str], None] = lambda m: None) -> DockerImage:
    """Find or build the app image; `client` is a docker.DockerClient. Never pulls."""
    import docker.errors

    if base_image is not None:
        return _ensure_base_image(client, base_image, progress)
    digest = rootfs_digest()
    tag = f"{REPOSITORY}:{digest}"
    try:
        image = client.images.get(tag)
        progress(f"image already present: {tag}")
        return _described(image, tag, _rootfs_python(), built=False)
    except docker.errors.ImageNotFound:
        pass
    rootfs = build_rootfs(cache_dir=cache_dir, progress=progress)
    return ensure_tree_image(client, rootfs.path, rootfs.digest, REPOSITORY, image_changes(rootfs), progress,
                             python=rootfs.python)


def ensure_tree_image(client, root: Path, digest: str, repository: str, changes: list[str],
                      progress: Callable[[str], None] = lambda m: None, python: str = "") -> DockerImage:
    """`repository:digest`, imported FROM scratch from the tree at root with `changes` (ENV, USER,
    CMD, ...) unless an image with that tag is already present. Never pulls."""
    import docker.errors

    tag = f"{repository}:{digest}"
    try:
        image = client.images.get(tag)
        progress(f"image already present: {tag}")
        return _described(image, tag, python, built=False)
    except docker.errors.ImageNotFound:
        pass
    progress(f"importing {root.name[:12]} as {tag}")
    with owned_temporary("image") as scratch:  # named after this runner: bench clean removes it once killed
        tarball = scratch / "rootfs.tar"
        write_tarball(root, tarball)
        client.api.import_image_from_file(str(tarball), repository=repository, tag=digest,
                                          changes=[*changes, *(f"LABEL {key}={value}" for key, value in LABELS.items())])
    return _described(client.images.get(tag), tag, python, built=True)


def remove_images(client, keep: tuple[str, ...] = (), repository: str = REPOSITORY) -> list[str]:
    """Remove layerbench/app (or `repository`) images but those tagged `keep` (images of old inputs
    pile up, ~40 MB each); the tags removed."""
    import docker.errors

    removed = []
    for image in client.images.list(name=repository):
        if any(tag in keep for tag in image.tags):
            continue
        try:
            client.images.remove(image.id, force=True)
            removed += image.tags
        except docker.errors.APIError:  # in use by a running container, or already gone
            pass
    return removed


def write_tarball(root: Path, tarball: Path) -> None:
    """An uncompressed tar of the tree at root, owned by root:root (the engine imports it as is)."""
    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(tarball, "w", format=tarfile.PAX_FORMAT) as archive:
        for entry in sorted(os.listdir(root)):
            archive.add(root / entry, arcname=entry, filter=as_root)


def image_changes(rootfs: Rootfs) -> list[str]:
    """The app image's config on top of its rootfs: environment, user, port, command, the rootfs's digest."""
    changes = [f"ENV {key}={value}" for key, value in sorted(rootfs.env.items())]
    changes += [f"USER {NOBODY_ID}:{NOBODY_ID}", "WORKDIR /tmp", f"EXPOSE {APP_PORT}/tcp",
                f"CMD {json.dumps(rootfs.app_argv('0.0.0.0', APP_PORT))}"]
    changes.append(f"LABEL layerbench.rootfs={rootfs.digest}")
    return changes


def _rootfs_python() -> str:
    from sys import version_info
    return f"/usr/local/bin/python{version_info.major}.{version_info.minor}"


def _described(image, tag: str, python: str, built: bool) -> DockerImage:
    return DockerImage(image_id=image.id, tag=tag, size_bytes=int(image.attrs.get("Size", 0)), python=python,
                       built=built)


# ---- the optional base-image path (needs a registry or a locally present base image) ---------

def base_image_dockerfile(base_image: str) -> str:
    """The Dockerfile that puts the app on top of an official python image."""
    cmd = app_argv(BASE_IMAGE_PYTHON, "0.0.0.0", APP_PORT)
    return "\n".join([
        f"FROM {base_image}",
        f"COPY bench/__init__.py {APP_DIR}/bench/__init__.py",
        f"COPY bench/app/ {APP_DIR}/bench/app/",
        # Precompile: the container runs with a read-only root filesystem.
        f"RUN {BASE_IMAGE_PYTHON} -m compileall -q --invalidation-mode unchecked-hash {APP_DIR}",
        f"USER {NOBODY_ID}:{NOBODY_ID}",
        "WORKDIR /tmp",
        f"EXPOSE {APP_PORT}/tcp",
        f"CMD {json.dumps(cmd)}",
        "",
    ])


def _ensure_base_image(client, base_image: str, progress: Callable[[str], None]) -> DockerImage:
    import docker.errors

    dockerfile = base_image_dockerfile(base_image)
    context = _base_context(dockerfile)
    tag = f"{REPOSITORY}:base-{hashlib.sha256(context).hexdigest()[:16]}"
    try:
        image = client.images.get(tag)
        progress(f"image already present: {tag}")
        return _described(image, tag, BASE_IMAGE_PYTHON, built=False)
    except docker.errors.ImageNotFound:
        pass
    progress(f"building {tag} FROM {base_image}")
    # pull=False: the engine uses a local base image or fetches it itself if it can reach a registry.
    image, _ = client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, labels=LABELS,
                                   pull=False, rm=True, forcerm=True)
    return _described(image, tag, BASE_IMAGE_PYTHON, built=True)


def _base_context(dockerfile: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mtime = len(data), 0  # a fixed mtime keeps the context hash (the tag) stable
        archive.addfile(info, io.BytesIO(data))
        sources = [PACKAGE_PARENT / "bench" / "__init__.py", *sorted((PACKAGE_PARENT / "bench" / "app").glob("*.py"))]
        for source in sources:
            data = source.read_bytes()
            info = tarfile.TarInfo(source.relative_to(PACKAGE_PARENT).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
