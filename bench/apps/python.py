"""layerbench's own app (bench/app/server.py), run by the host's own interpreter in every layer.

Bare runs it with this very interpreter from this checkout; the container and the VM run the
rootfs built from that interpreter (bench.images.rootfs), so every layer runs the same bits.
"""

from __future__ import annotations

import sys

from bench.app.command import PACKAGE_PARENT, app_argv
from bench.apps.base import App, ContainerImage, Endpoint, Layer, Place, ProgressFn, Start, Tree, no_progress
from bench.apps.registry import register

NOBODY_ID = 65534


@register
class PythonApp(App):
    kind = "python"
    default = True  # a scenario that names no app runs this one
    description = ("layerbench's own web app: Python's standard library only (http.server, one thread per "
                   "connection), tens of µs of CPU per tiny request.")
    ready_path = "/health"
    stats_path = "/stats"

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {"hello": Endpoint("/hello"), "cpu": Endpoint("/cpu", "n"), "mem": Endpoint("/mem", "mb"),
                "io": Endpoint("/io", "kb"), "json": Endpoint("/json")}

    def start(self, place: Place) -> Start:
        """The app under the interpreter of its files: on the host, this very interpreter from this
        checkout; elsewhere the rootfs's copy of it, as nobody."""
        if place.files is None:
            return Start(argv=app_argv(sys.executable, place.address, place.port, app_dir=str(PACKAGE_PARENT)),
                         port=place.port)
        argv = app_argv(place.files.python or "python3", place.address, place.port)
        if place.layer is not Layer.GUEST:  # the engine switches user and mounts the root read-only
            return Start(argv=argv, port=place.port, user=(NOBODY_ID, NOBODY_ID))
        from bench.images.guest_init import run_as

        # The guest's init starts it as root: the interpreter drops root itself (run_as), no helper
        # process, no extra start-up cost.
        env = place.files.env if isinstance(place.files, Tree) else {}
        return Start(argv=run_as(argv, NOBODY_ID), port=place.port, env=env, user=(NOBODY_ID, NOBODY_ID),
                     workdir="/tmp", drops_own_privileges=True, ready_line="listening on")

    def tree(self, progress: ProgressFn = no_progress) -> Tree:
        from bench.images.rootfs import build_rootfs

        rootfs = build_rootfs(progress=progress)
        return Tree(path=rootfs.path, digest=rootfs.digest, python=rootfs.python, env=dict(rootfs.env))

    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        """The FROM-scratch image of the rootfs (a bench.images.docker_image.DockerImage, which has
        every field of a ContainerImage and the app's argv in it)."""
        from bench.images.docker_image import ensure_image

        return ensure_image(client, base_image=base_image, progress=progress)  # type: ignore[return-value]
