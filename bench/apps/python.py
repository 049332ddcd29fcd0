"""layerbench's own app (bench/app/server.py), run by the host's own interpreter in every layer.

Bare runs it with this very interpreter from this checkout; the container and the VM run the
rootfs built from that interpreter (bench.images.rootfs), so every layer runs the same bits.
"""

from __future__ import annotations

import sys

from bench.app.command import APP_PORT_IN_GUEST, PACKAGE_PARENT, app_argv
from bench.apps.base import (App, AppNotes, ContainerImage, ContainerStart, Endpoint, GuestStart, HostStart,
                             ProgressFn, no_progress)
from bench.apps.registry import register

NOBODY_ID = 65534


@register
class PythonApp(App):
    kind = "python"
    description = ("layerbench's own web app: Python's standard library only (http.server, one thread per "
                   "connection), tens of µs of CPU per tiny request.")
    ready_path = "/health"
    stats_path = "/stats"
    notes = AppNotes()

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {"hello": Endpoint("/hello"), "cpu": Endpoint("/cpu", "n"), "mem": Endpoint("/mem", "mb"),
                "io": Endpoint("/io", "kb"), "json": Endpoint("/json")}

    def host_start(self, host: str, port: int) -> HostStart:
        """This very interpreter, from this checkout."""
        return HostStart(argv=app_argv(sys.executable, host, port, app_dir=str(PACKAGE_PARENT)), port=port)

    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        """The FROM-scratch image of the rootfs (a bench.images.docker_image.DockerImage, which has
        every field of a ContainerImage and the app's argv in it)."""
        from bench.images.docker_image import ensure_image

        return ensure_image(client, base_image=base_image, progress=progress)  # type: ignore[return-value]

    def container_start(self, image: ContainerImage, host: str, port: int) -> ContainerStart:
        return ContainerStart(command=app_argv(image.python or "python3", host, port), user=f"{NOBODY_ID}:{NOBODY_ID}",
                              port=port, read_only=True)

    def guest_start(self, progress: ProgressFn = no_progress) -> GuestStart:
        from bench.images.initramfs import run_as
        from bench.images.rootfs import build_rootfs

        rootfs = build_rootfs(progress=progress)
        # The interpreter drops root itself (run_as): no helper process, no extra start-up cost.
        return GuestStart(root=rootfs.path, digest=rootfs.digest,
                          argv=run_as(rootfs.app_argv("0.0.0.0", APP_PORT_IN_GUEST), NOBODY_ID), env=rootfs.env,
                          uid=NOBODY_ID, gid=NOBODY_ID, port=APP_PORT_IN_GUEST, workdir="/tmp",
                          drops_own_privileges=True, ready_line="listening on")
