"""The app contract: what a benchmarked app declares, and what each kind of layer asks it for.

An app module supplies a subclass of `App`. It DECLARES what the app is: its name, which
endpoints (workloads) it serves and the URL path of each, what "ready" means (a path that answers
200), whether it has a view from inside its layer (/stats), and the port it listens on inside
isolation. It IMPLEMENTS how it starts, once per kind of layer:

    host_start        a plain host process: argv, environment, and for an image a root to chroot
                      into and a user to become;
    container_image   an image in the local engine (built from a rootfs, or the user's own);
    container_start   how to run that image: command (or the image's own), user, read-only root;
    guest_start       a root filesystem, argv, environment and user for a VM's init.

Setups ask the app for these and never know which app they run. The words an app adds to a
layer's explanation (what "bare" means for an image, say) are declared here too.
"""

from __future__ import annotations

import abc
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

APP_PORT = 8080  # the port a reference app listens on inside a container's network or a VM
ProgressFn = Callable[[str], None]


def no_progress(message: str) -> None:
    pass


@dataclass(frozen=True)
class Endpoint:
    """One thing an app serves: its URL path and the name of its query parameter, if any."""

    path: str
    parameter: str | None = None


@dataclass(frozen=True)
class HostStart:
    """How to start the app as a plain host process."""

    argv: list[str]
    port: int  # where it answers on 127.0.0.1: the port it was given, or an image's own
    env: dict[str, str] | None = None  # None: the runner's own environment
    root: str | None = None  # chroot into this directory before exec (a user's image)
    cwd: str = "/"  # the working directory inside root (with a root only)
    uid: int | None = None  # become this user after the chroot (None: stay who we are)
    gid: int | None = None
    scratch: Path | None = None  # a folder made for this start (config, pid file): removed after it stops


@dataclass(frozen=True)
class ContainerImage:
    """An image the local engine holds, ready to run."""

    tag: str
    image_id: str
    size_bytes: int  # as the engine reports it
    python: str | None = None  # the interpreter inside (the python app's image only)
    built: bool = False  # built by this call (False: it was already there, or it is the user's)


@dataclass(frozen=True)
class ContainerStart:
    """How to run an app's image."""

    command: list[str] | None  # None: the image's own entrypoint and command
    user: str | None  # "65534:65534"; None: the image's own user
    port: int  # the port it listens on: inside the container's network, or the host's with host networking
    read_only: bool = True  # the root filesystem can be mounted read-only (a tmpfs then holds /tmp)
    cap_add: tuple[str, ...] = ()  # capabilities given back after dropping them all


@dataclass(frozen=True)
class GuestStart:
    """What a VM's init starts: a root filesystem, the app's argv, environment and user."""

    root: Path  # the tree that becomes the guest's root filesystem
    digest: str  # identifies the tree's content (a cache key)
    argv: list[str]
    env: dict[str, str]
    uid: int
    gid: int
    port: int  # the port it listens on inside the guest
    workdir: str = "/"
    drops_own_privileges: bool = False  # argv itself becomes uid/gid (else init switches user first)
    ready_line: str | None = None  # a line the app prints once it listens (else init watches the port)


@dataclass(frozen=True)
class AppNotes:
    """What running this app means in each kind of layer, for that layer's explanation and caveats."""

    host: str = ""
    container: str = ""
    guest: str = ""
    host_caveats: tuple[str, ...] = ()
    container_caveats: tuple[str, ...] = ()
    guest_caveats: tuple[str, ...] = ()


class App(abc.ABC):
    """One benchmarked app. Instances are cheap; `prepare` does the slow work once."""

    kind: ClassVar[str]  # the registry name: python, nginx, image
    description: ClassVar[str]  # one sentence: what the app is
    ready_path: ClassVar[str] = "/"  # GET answers 200 once the app serves
    stats_path: ClassVar[str | None] = None  # the app's own view from inside its layer, if it has one
    notes: ClassVar[AppNotes] = AppNotes()
    # What a host-started app gets when the runner dies (PR_SET_PDEATHSIG). SIGKILL unless the app
    # must stop its own children (nginx's master stops its worker on SIGTERM; on SIGKILL the worker
    # would live on, serving, with its environment wiped so no marker finds it).
    host_death_signal: ClassVar[int] = signal.SIGKILL

    @property
    def name(self) -> str:
        """What labels and records call it (an image: its reference)."""
        return self.kind

    @property
    @abc.abstractmethod
    def endpoints(self) -> dict[str, Endpoint]:
        """Endpoint name (a workload's `endpoint`) -> what the app serves for it."""

    def serves(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    def url_path(self, endpoint: str, param: int | None = None) -> str:
        """The request path with its query for a workload on this app, e.g. /cpu?n=1000."""
        served = self.endpoints[endpoint]
        if served.parameter and param is not None:
            return f"{served.path}?{served.parameter}={param}"
        return served.path

    @classmethod
    def check(cls) -> str | None:
        """None when this app can run here; else one sentence saying why not and the fix."""
        return None

    def prepare(self, progress: ProgressFn = no_progress) -> None:
        """Find or build what every layer needs of this app (an image's config). Idempotent."""

    @abc.abstractmethod
    def host_start(self, host: str, port: int) -> HostStart:
        """How to start it as a host process listening on host:port (an image keeps its own port)."""

    @abc.abstractmethod
    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        """Find or build its image in the engine `client` (a docker.DockerClient). Never pulls."""

    @abc.abstractmethod
    def container_start(self, image: ContainerImage, host: str, port: int) -> ContainerStart:
        """How to run `image` listening on host:port (an image keeps its own port)."""

    @abc.abstractmethod
    def guest_start(self, progress: ProgressFn = no_progress) -> GuestStart:
        """Find or build the root filesystem a VM boots, and how its init starts the app."""

    def describe(self) -> dict:
        """What a run stores about the app."""
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "endpoints": {name: served.path for name, served in self.endpoints.items()},
                "ready_path": self.ready_path, "stats_path": self.stats_path}


def scratch_folder(app: str) -> Path:
    """A folder for one host start (config, pid file), named after the runner, so `bench clean`
    can tell a folder a killed runner left from one in use (bench.scratch)."""
    from bench.scratch import owned_folder

    return owned_folder("host", label=app)


# The environment marker every host-started app carries ("<runner pid> <run id>"): `bench clean`
# finds orphans by it even when the app rewrites its command line (nginx) or runs from a chroot.
LEFTOVER_ENV = "LAYERBENCH_APP"

