"""A user's own local image, run from the same bits in every layer: `app: {image: NAME:TAG, ...}`.

- container: the image as it is (its entrypoint, command, user, environment and working directory);
- VM: its root filesystem becomes the guest's root, and init starts its entrypoint with its
  environment, working directory and user, as Kata Containers and Fargate treat an image;
- bare: its entrypoint runs from its extracted root filesystem as a plain host process, in a
  chroot and as its user, with no namespaces and no cgroup limits.

It serves one endpoint, `hello`, at the `path` the scenario gives (a tiny reply, as the reference
apps' /hello); "ready" is the first 200 on `ready` (default: `path`). Nothing is pulled.
"""

from __future__ import annotations

from bench.apps.base import (App, ContainerImage, Endpoint, Layer, LayerNote, Place, ProgressFn, Start, Tree,
                             no_progress)
from bench.apps.registry import register
from bench.errors import SetupError

# Given back after dropping every capability: binding a port below 1024, and for an image that
# starts as root, what a server needs to drop to its own user (Docker's defaults include these).
_LOW_PORT_CAPS = ("NET_BIND_SERVICE",)
_ROOT_CAPS = ("CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "FOWNER")

NOTES = {
    Layer.HOST: LayerNote(
        "For a user's image, bare means its entrypoint runs from the image's extracted root filesystem as a plain "
        "host process: a chroot into those files and a switch to the image's user, with no namespaces and no cgroup "
        "limits. It shares the host's network, process table and kernel like any process.",
        caveats=("Bare for an image: a chroot with no namespaces, so the app listens on the host's own network at "
                 "the image's port (on every interface it binds), nothing is mounted in the chroot (no /proc, a few "
                 "device nodes only), and it starts as the image's user with no capability dropped.",)),
    Layer.CONTAINER: LayerNote(
        "The image runs as it is: its own entrypoint, command, user and environment. layerbench drops every "
        "capability (giving back only what a low port or a root start needs), sets no-new-privileges and "
        "publishes the port on 127.0.0.1 only. The root filesystem stays writable (the container's overlay "
        "layer), because an arbitrary image may write anywhere."),
    Layer.GUEST: LayerNote(
        "The guest boots the image's root filesystem as its root (packed into the initramfs), and its init starts "
        "the image's entrypoint with the image's environment, working directory and user, as Kata Containers and "
        "Fargate run an image in a micro-VM."),
}


@register
class ImageApp(App):
    kind = "image"
    description = "a user's own local container image, run from the same files in every layer"
    notes = NOTES
    bare_from_tree = True  # bare chroots into the image's extracted files
    by_image_reference = True  # `app: {image: NAME:TAG, ...}`

    def __init__(self, image: str, port: int | None = None, path: str = "/", ready: str | None = None):
        self.image = image
        self.asked_port = port
        self.path = path
        self.ready_path = ready or path  # type: ignore[misc]  # per image, not per class
        self._config = None  # bench.images.exported.ImageConfig once prepared
        self._tree: Tree | None = None
        self._user: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.image

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {"hello": Endpoint(self.path)}

    @property
    def port(self) -> int:
        """The port the image listens on: the scenario's, or the one port it exposes."""
        if self.asked_port is not None:
            return self.asked_port
        ports = self.config.ports
        if len(ports) != 1:
            found = f"exposes ports {list(ports)}" if ports else "exposes no port"
            raise SetupError(f"image {self.image} {found}: say which one it listens on with `port:`")
        return ports[0]

    @property
    def config(self):
        if self._config is None:
            from bench.images.exported import inspect_image

            self._config = inspect_image(self.image)
        return self._config

    def prepare(self, progress: ProgressFn = no_progress) -> None:
        """Read the image's configuration (SetupError when it is not here) and settle its port."""
        self.config  # noqa: B018 - raises when the image is not here, even when the scenario gives the port
        self.port  # noqa: B018 - raises when the port is unknown

    def tree(self, progress: ProgressFn = no_progress) -> Tree:
        """The image's root filesystem, extracted once per image (slow once: before any start is timed)."""
        from bench.images.exported import export_root, resolve_user

        if self._tree is None:
            root = export_root(self.config, progress=progress)
            self._user = resolve_user(root, self.config.user)
            self._tree = Tree(path=root, digest=self.config.image_id.removeprefix("sha256:"), env=dict(self.config.env))
        return self._tree

    def start(self, place: Place) -> Start:
        """In an engine: the image as it is (its entrypoint, user, environment), with the capabilities a
        low port or a root start needs. From its tree (bare, VM): its entrypoint, environment, working
        directory and user, as the engine would start it."""
        if place.layer is Layer.CONTAINER:
            caps = _LOW_PORT_CAPS if self.port < 1024 else ()
            if self.config.user.split(":")[0] in ("", "0", "root"):
                caps = (*caps, *_ROOT_CAPS)
            return Start(argv=None, port=self.port, read_only_root=False, cap_add=caps)
        self.tree()
        config = self.config
        return Start(argv=list(config.argv), port=self.port, env=dict(config.env), user=self._user,
                     workdir=config.workdir or "/", read_only_root=False)

    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        if base_image is not None:
            raise SetupError("base_image applies to the python app only; an image app runs the image itself")
        from bench.images.exported import inspect_image

        self._config = inspect_image(self.image, client)
        return ContainerImage(tag=self.image, image_id=self._config.image_id, size_bytes=self._config.size_bytes)

    def describe(self) -> dict:
        return {**super().describe(), "image": self.image, "port": self.asked_port}
