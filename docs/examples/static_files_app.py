"""A worked example of an app (docs/extending.md): Python's own `http.server` module serving a
folder, run from the same files as layerbench's python app in every layer."""

from __future__ import annotations

import sys

from bench.apps.base import (App, ContainerImage, Endpoint, Layer, LayerNote, Place, ProgressFn, Start, Tree,
                             no_progress, scratch_folder)
from bench.apps.python import NOBODY_ID, PythonApp
from bench.apps.registry import register

PAGE = b"hello from http.server\n"


@register
class StaticFilesApp(App):
    kind = "static-files"
    description = "Python's http.server module serving a folder (its index.html on the host, /tmp elsewhere)"
    ready_path = "/"
    notes = {Layer.HOST: LayerNote(caveats=("http.server answers one request per connection (HTTP/1.0): every "
                                            "request pays a TCP handshake, in every layer alike.",))}

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {"hello": Endpoint("/"), "static": Endpoint("/")}

    def start(self, place: Place) -> Start:
        if place.files is None:  # on the host: this interpreter, a folder made for this start
            folder = scratch_folder(self.kind)
            (folder / "index.html").write_bytes(PAGE)
            return Start(argv=[sys.executable, "-m", "http.server", str(place.port), "--bind", place.address,
                               "--directory", str(folder)], port=place.port, scratch=folder)
        # From the python app's rootfs (a container or a VM): its interpreter, as nobody, serving /tmp.
        argv = [place.files.python or "python3", "-I", "-m", "http.server", str(place.port), "--bind",
                place.address, "--directory", "/tmp"]
        env = place.files.env if isinstance(place.files, Tree) else None
        return Start(argv=argv, port=place.port, env=env, user=(NOBODY_ID, NOBODY_ID), workdir="/tmp")

    def tree(self, progress: ProgressFn = no_progress) -> Tree:
        return PythonApp().tree(progress)  # the same bits as the python app: the host's own interpreter

    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        return PythonApp().container_image(client, progress, base_image)
