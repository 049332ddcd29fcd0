"""nginx, the host's own: a fast server written in C, the second reference app.

Every layer runs the same bits: bare runs /usr/sbin/nginx itself; the container and the VM run a
root filesystem holding that binary, the shared libraries `ldd` names for it, a generated config
and a static file (bench.images.tree), imported FROM scratch as an image or packed into the VM's
initramfs. One worker process, no access log, pid and temp files under /tmp, an unprivileged port;
it runs as nobody in every layer.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from bench.apps.base import (APP_PORT, App, ContainerImage, Endpoint, Layer, LayerNote, Place, ProgressFn, Start, Tree,
                             no_progress, scratch_folder)
from bench.apps.registry import register

NGINX = "/usr/sbin/nginx"
NOBODY_ID = 65534
CONFIG = "/etc/nginx/nginx.conf"  # inside the root filesystem
WWW = "/srv/www"
STATIC_NAME = "static.html"
BUSYBOX_IN_ROOT = "/bin/busybox"  # renders the config for another port (host networking)
TREE_VERSION = "1"  # bump when the tree's layout changes
NGINX_REPOSITORY = "layerbench/nginx"  # its images, tagged by the tree's digest
_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def static_page() -> bytes:
    """The static file nginx serves: 4 KiB of HTML, the same bytes in every layer."""
    head = b"<!doctype html>\n<html><head><title>layerbench static page</title></head><body>\n"
    tail = b"</body></html>\n"
    line = b"<p>layerbench serves this file from disk to measure a static reply.</p>\n"
    body = (line * (4096 // len(line) + 1))[:4096 - len(head) - len(tail)]
    return head + body + tail


def config(listen: str, folder: str, www: str) -> str:
    """nginx.conf: one worker, `listen`, /hello as a tiny reply and /static.html from `www`; pid
    and temp files under `folder`. Keep-alive connections are never closed by nginx (as the python
    app never closes them), so no reconnects enter the measurement."""
    temp = "".join(f"  {kind}_temp_path {folder}/{kind};\n" for kind in _TEMP_KINDS)
    return ("worker_processes 1;\ndaemon off;\n" + f"pid {folder}/nginx.pid;\nerror_log stderr;\n"
            + "events { worker_connections 1024; }\n"
            "http {\n  access_log off;\n  sendfile on;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n"
            "  types { text/html html; }\n  default_type application/octet-stream;\n"
            f"{temp}"
            f"  server {{\n    listen {listen};\n"
            '    location = /hello { return 200 "hello\\n"; }\n'
            f"    location = /{STATIC_NAME} {{ root {www}; }}\n"
            "  }\n}\n")


def host_command_args(folder: Path) -> list[str]:
    return [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "stderr"]


@register
class NginxApp(App):
    kind = "nginx"
    description = ("nginx from the host's Debian package: a fast event-driven server written in C, one worker "
                   "process, serving a tiny reply (/hello) and a 4 KiB static file (/static.html).")
    ready_path = "/hello"
    stats_path = None
    notes = {Layer.CONTAINER: LayerNote(
        "nginx's image holds the host's own nginx binary, its shared libraries and a generated config; with host "
        "networking a static busybox renders the config for the port given, then execs nginx.")}

    def __init__(self):
        self._tree = None

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {"hello": Endpoint("/hello"), "static": Endpoint(f"/{STATIC_NAME}")}

    @classmethod
    def check(cls) -> str | None:
        if not os.access(NGINX, os.X_OK):
            return f"{NGINX} is not installed (apt-get install nginx, or run scripts/host-setup.sh)"
        return None

    def start(self, place: Place) -> Start:
        """nginx as nobody with one worker; SIGTERM stops it (the master then stops its worker: on
        SIGKILL the worker would live on, serving, with its environment wiped so no marker finds it)."""
        user = (NOBODY_ID, NOBODY_ID)
        if place.files is None:
            return self._host_start(place.address, place.port)
        if place.layer is Layer.GUEST or (place.address, place.port) == ("0.0.0.0", APP_PORT):
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"} if place.layer is Layer.GUEST else None
            return Start(argv=[NGINX, "-c", CONFIG, "-e", "stderr"], port=place.port, env=env, user=user,
                         workdir="/tmp", stop_signal=signal.SIGTERM)
        # Another address (host networking): render the config for it into /tmp, then become nginx.
        script = (f'{BUSYBOX_IN_ROOT} sed "s/listen 0.0.0.0:{APP_PORT};/listen $0;/" {CONFIG} > /tmp/nginx.conf '
                  f'&& exec {NGINX} -c /tmp/nginx.conf -e stderr')
        return Start(argv=[BUSYBOX_IN_ROOT, "sh", "-c", script, f"{place.address}:{place.port}"], port=place.port,
                     user=user, workdir="/tmp", stop_signal=signal.SIGTERM)

    def _host_start(self, host: str, port: int) -> Start:
        """The host's nginx with a config written for this start into a folder of its own; as root
        it runs as nobody (the folder is nobody's), as in the container and the VM."""
        folder = scratch_folder(self.kind)
        (folder / "www").mkdir()
        (folder / "www" / STATIC_NAME).write_bytes(static_page())
        (folder / "nginx.conf").write_text(config(f"{host}:{port}", str(folder), str(folder / "www")))
        for path in (folder, folder / "www"):
            os.chmod(path, 0o755)
        os.chmod(folder / "www" / STATIC_NAME, 0o644)
        as_root = os.geteuid() == 0
        if as_root:  # nginx writes its pid and temp folders there
            os.chown(folder, NOBODY_ID, NOBODY_ID)
        return Start(argv=host_command_args(folder), port=port, scratch=folder, stop_signal=signal.SIGTERM,
                     user=(NOBODY_ID, NOBODY_ID) if as_root else None)

    def tree(self, progress: ProgressFn = no_progress) -> Tree:
        """The root filesystem (cached): nginx, its libraries, the config, the static file, busybox."""
        if self._tree is None:
            from bench.images.tree import build_tree

            built = build_tree("nginx-rootfs", self._plan(), progress=progress)
            self._tree = Tree(path=built.path, digest=built.digest)
        return self._tree

    def tree_digest(self) -> str:
        """The digest the tree would have now (hashes the inputs; builds nothing)."""
        return self._plan().digest()

    def _plan(self):
        from bench.images.initramfs import find_busybox
        from bench.images.rootfs import shared_libraries
        from bench.images.tree import TreePlan

        busybox = find_busybox()
        if busybox is None:
            raise FileNotFoundError("busybox is not installed (apt-get install busybox-static)")
        plan = TreePlan(version=TREE_VERSION, files={NGINX: Path(NGINX), BUSYBOX_IN_ROOT: busybox})
        for name, library in shared_libraries([Path(NGINX)]).items():
            plan.files[library] = Path(os.path.realpath(library))
        plan.generated = {
            CONFIG: (config(f"0.0.0.0:{APP_PORT}", "/tmp", WWW).encode(), 0o644),
            f"{WWW}/{STATIC_NAME}": (static_page(), 0o644),
            "/etc/passwd": (f"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:{NOBODY_ID}:{NOBODY_ID}:nobody:"
                            f"/nonexistent:/sbin/nologin\n".encode(), 0o644),
            "/etc/group": (f"root:x:0:\nnogroup:x:{NOBODY_ID}:\n".encode(), 0o644),
        }
        plan.folders = {"/tmp": 0o1777, "/proc": 0o755, "/sys": 0o755, "/dev": 0o755}
        return plan

    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        import json

        from bench.errors import SetupError
        from bench.images.docker_image import ensure_tree_image

        if base_image is not None:
            raise SetupError("base_image applies to the python app only; nginx runs from the host's own binary")
        tree = self.tree(progress)
        changes = [f"USER {NOBODY_ID}:{NOBODY_ID}", "WORKDIR /tmp", f"EXPOSE {APP_PORT}/tcp",
                   f"CMD {json.dumps([NGINX, '-c', CONFIG, '-e', 'stderr'])}"]
        image = ensure_tree_image(client, tree.path, tree.digest, NGINX_REPOSITORY, changes, progress)
        return ContainerImage(tag=image.tag, image_id=image.image_id, size_bytes=image.size_bytes, built=image.built)
