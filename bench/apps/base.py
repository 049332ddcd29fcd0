"""The app contract: what a benchmarked app declares, and the one start description it gives.

An app module supplies a subclass of `App`. It DECLARES what the app is: its name, which
endpoints (workloads) it serves and the URL path of each, what "ready" means (a path that answers
200), whether it has a view from inside its layer (/stats), and what it means in each kind of
layer (`notes`: words and caveats, as data). It SUPPLIES its files and ONE start description:

    tree              the root filesystem it runs from off the host (a VM's root; an image's files);
    container_image   its image in the local engine (built from a tree, or the user's own);
    start(place)      a Start: argv, environment, port, user, working directory, readiness line,
                      stop signal..., for the place a layer gives (kind of layer, address, port, files).

Each layer turns that Start into its own launch (bare: a host process; container: `docker run`;
VM: its init's start via guest_start; container in a VM: an OCI bundle) and never knows which app
it runs.
"""

from __future__ import annotations

import abc
import enum
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Mapping

APP_PORT = 8080  # the port a reference app listens on inside a container's network or a VM
ProgressFn = Callable[[str], None]


def no_progress(message: str) -> None:
    pass


@dataclass(frozen=True)
class Endpoint:
    """One thing an app serves: its URL path and the name of its query parameter, if any."""

    path: str
    parameter: str | None = None


class Layer(enum.Enum):
    """The kind of place an app starts in. A setup says which one it is (`Setup.runs_app_as`): the
    container-in-VM setup starts the app as a guest's init would, then wraps it in a bundle."""

    HOST = enum.auto()  # a plain host process (bare)
    CONTAINER = enum.auto()  # an engine runs the app's image
    GUEST = enum.auto()  # a VM's init starts it from a root filesystem the guest boots


@dataclass(frozen=True)
class Tree:
    """A root filesystem the app runs from: the one a VM boots, or a user's image extracted, which
    bare chroots into."""

    path: Path
    digest: str  # identifies the tree's content (a cache key)
    python: str | None = None  # the interpreter inside (the python app's rootfs only)
    env: dict[str, str] = field(default_factory=dict)  # the environment the tree's programs need


@dataclass(frozen=True)
class ContainerImage:
    """An image the local engine holds, ready to run."""

    tag: str
    image_id: str
    size_bytes: int  # as the engine reports it
    python: str | None = None  # the interpreter inside (the python app's image only)
    built: bool = False  # built by this call (False: it was already there, or it is the user's)


@dataclass(frozen=True)
class Place:
    """Where a layer asks the app to start: its kind of layer, the address and port to listen on,
    and the files it runs from (None: the host's own filesystem)."""

    layer: Layer
    address: str
    port: int
    files: Tree | ContainerImage | None = None


@dataclass(frozen=True)
class Start:
    """The app's one start description. Each layer turns it into its own launch: bare into a host
    process (a chroot into `Place.files` for a tree), the container setups into `docker run`, the
    VM into its init's start (GuestStart), the container in a VM into an OCI bundle."""

    argv: list[str] | None  # None: the image's own entrypoint and command
    port: int  # the port it listens on: the one it was given, or an image's own
    env: dict[str, str] | None = None  # None: the layer's default (the runner's own; an image's own)
    user: tuple[int, int] | None = None  # (uid, gid) it runs as; None: who starts it, or an image's own user
    workdir: str = "/"  # inside its tree (bare chroot, VM); an engine keeps the image's own WORKDIR
    ready_line: str | None = None  # a line it prints once it listens (else the port is watched)
    drops_own_privileges: bool = False  # argv itself becomes `user` (else the launcher switches user first)
    read_only_root: bool = True  # its root filesystem can be mounted read-only (a tmpfs then holds /tmp)
    cap_add: tuple[str, ...] = ()  # capabilities given back after dropping them all
    # What stops it with its children: sent when the runner dies (PR_SET_PDEATHSIG) too. SIGKILL unless
    # the app must stop its own children (nginx's master stops its worker on SIGTERM).
    stop_signal: int = signal.SIGKILL
    scratch: Path | None = None  # a folder made for this start (config, pid file): removed after it stops


@dataclass(frozen=True)
class GuestStart:
    """What a VM's init starts, made by the vm setup from the app's Start and Tree (guest_start):
    a root filesystem, the app's argv, environment and user."""

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


def guest_start(start: Start, tree: Tree) -> GuestStart:
    """The VM's launch of an app: its Start, from its Tree, as the guest's init runs it (as root
    when the app names no user)."""
    uid, gid = start.user or (0, 0)
    return GuestStart(root=tree.path, digest=tree.digest, argv=list(start.argv or []), env=dict(start.env or {}),
                      uid=uid, gid=gid, port=start.port, workdir=start.workdir,
                      drops_own_privileges=start.drops_own_privileges, ready_line=start.ready_line)


@dataclass(frozen=True)
class LayerNote:
    """What running this app means in one kind of layer: words added to that layer's explanation,
    and caveats added to its results."""

    explanation: str = ""
    caveats: tuple[str, ...] = ()


class App(abc.ABC):
    """One benchmarked app. Instances are cheap; `prepare` does the slow work once."""

    kind: ClassVar[str]  # the registry name: python, nginx, image
    description: ClassVar[str]  # one sentence: what the app is
    ready_path: ClassVar[str] = "/"  # GET answers 200 once the app serves
    stats_path: ClassVar[str | None] = None  # the app's own view from inside its layer, if it has one
    notes: ClassVar[Mapping[Layer, LayerNote]] = {}  # declared per kind of layer; none by default
    bare_from_tree: ClassVar[bool] = False  # bare runs it chrooted into its tree (a user's image)
    default: ClassVar[bool] = False  # the app a scenario that names none runs (one app declares it)
    # A user's image: a scenario names it by its reference (`app: {image: NAME:TAG}`), not by its kind.
    by_image_reference: ClassVar[bool] = False

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
    def start(self, place: Place) -> Start:
        """The one start description: how it starts at `place` (an image keeps its own port)."""

    @abc.abstractmethod
    def tree(self, progress: ProgressFn = no_progress) -> Tree:
        """Find or build the root filesystem it runs from outside the host's own files (a VM's root)."""

    @abc.abstractmethod
    def container_image(self, client, progress: ProgressFn = no_progress,
                        base_image: str | None = None) -> ContainerImage:
        """Find or build its image in the engine `client` (a docker.DockerClient). Never pulls."""

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

