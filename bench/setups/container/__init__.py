"""The container setup: the app in a Docker container.

Runs the app's image (for the python app and nginx a FROM-scratch image of the very bits the bare
process runs; for a user's image, that image as it is) through the Docker SDK, locked down where
the app allows (uid 65534, read-only root, no capabilities, 127.0.0.1 ports), pinned like the bare
app, on the OCI runtime the variant names (runc, crun or gVisor's runsc: `runtimes`). Which host
processes it costs is worked out in `attribution`; the engine's daemons, its fixed cost, in
`daemons`; talking to the engine is in `engine`; shims that failed starts leave behind are found
and removed by `shims`. The network variants (a published port with or without docker-proxy, the
container's own IP) and the path each request takes are in `networking`; the private dockerd a port
without the proxy needs is `private_engine`. Where the app's scratch files go is in `storage`.

The engine is a variant (`engines`): this class is the setup's declaration, its words and the Docker
client every engine builds the app's image with; each engine's class runs the containers (Docker's
`docker_setup`, Podman's bench.setups.container.podman), found through `engines.VARIANTS`.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bench.apps.base import Layer
from bench.errors import SetupError
from bench.roles import APP, RUNTIME, RoleProcess
from bench.setups.base import Options, Setup
from bench.setups.container import engine, engines, networking, private_engine, runtimes, storage
from bench.setups.container.attribution import DOCKER_PROXY, SANDBOX
from bench.setups.container.daemons import CONTAINERD, DOCKERD, daemon_processes
from bench.setups.registry import register
from bench.tool_versions import Tool

GVISOR_COLOUR = "#CC79A7"
GVISOR_NARRATION = ("the same app in a gVisor sandbox: a container whose system calls never reach the host kernel "
                    "directly. gVisor's sentry, a kernel written in Go running as an ordinary process, intercepts "
                    "and serves every one of them.")
_MEMORY = re.compile(r"^[1-9][0-9]*[bkmg]?$", re.IGNORECASE)  # what docker's --memory accepts


class ContainerOptions(Options):
    network: Literal["bridge", "host"] = "bridge"  # bridge: published port via docker-proxy/NAT
    cpus: float | None = Field(default=None, gt=0)  # CFS quota, in CPUs (0.5 = half a CPU)
    memory: str | None = None  # memory limit like "256m" or "1g"
    base_image: str | None = None  # e.g. "python:3.11-slim" (needs a registry); default: scratch image
    # Pin the shim and docker-proxy to the app's CPUs (default), so the whole container draws on the
    # CPU budget the bare app had; false lets them run anywhere, e.g. beside the load generator.
    pin_helpers: bool = True
    # Where the app's temp files (/io) go: "tmpfs" keeps the root read-only with a tmpfs at /tmp;
    # "overlay" writes them through the container's overlayfs writable layer, which needs a
    # writable root (read_only=False, no /tmp tmpfs; still uid 65534, no capabilities); "volume"
    # (a named volume) and "bind" (a host directory) mount a plain directory of the host at /tmp.
    scratch: Literal["tmpfs", "overlay", "volume", "bind"] = "tmpfs"
    # The OCI runtime Docker runs the container with: runc (Docker's default), crun, or gVisor's
    # runsc; each must be registered with dockerd (scripts/host-setup.sh registers crun and runsc).
    runtime: Literal["runc", "crun", "runsc"] = runtimes.DEFAULT_RUNTIME
    # The engine (bench.setups.container.engines): docker, or podman as root or, rootless, as the
    # dedicated unprivileged user; port_handler: who forwards a rootless published port.
    engine: Literal["docker", "podman"] = engines.DEFAULT_ENGINE
    rootless: bool = False
    port_handler: Literal["rootlesskit", "slirp4netns"] = engines.DEFAULT_PORT_HANDLER
    # A published port without docker-proxy: kernel DNAT with hairpin NAT, in a private dockerd
    # started for the run with --userland-proxy=false (bench.setups.container.private_engine).
    userland_proxy: bool = True
    # How the load reaches a bridge container: its published port on 127.0.0.1, or its own IP on
    # Docker's bridge (no port published, no proxy, no NAT; bench.setups.container.network).
    reach: Literal["published", "container-ip"] = networking.PUBLISHED

    @field_validator("memory")
    @classmethod
    def _memory_like_docker(cls, value: str | None) -> str | None:
        if value is not None and not _MEMORY.match(value):
            raise ValueError(f"memory must look like 256m, 1g or 1048576 (bytes), got {value!r}")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _options_fit(self) -> "ContainerOptions":
        problem = networking.options_problem(self.network, self.userland_proxy, self.reach, self.runtime, self.engine)
        if problem is not None:
            raise ValueError(problem)
        return engines.checked(self)  # a ValueError naming the engine options that do not go together


@register
class ContainerSetup(networking.NetworkVariants, Setup):
    name = "container"
    stack = "app → namespaces + cgroups + overlayfs (+ NAT and a userland proxy for a published port) → host kernel"
    narration = ("the same app inside a container: the kernel is shared, only namespaces and cgroups "
                 "separate it. A published port adds NAT and a userland proxy that copies every byte once more.")
    explanation = ("The app is still a host process, run by the same kernel: namespaces give it its own view "
                   "(process ids, mounts, network), cgroups account and limit its resources, and its files come "
                   "through overlayfs, a union of image layers. None of these adds work to an ordinary request, "
                   "so CPU-bound work costs about the same as bare. A small runtime process (the containerd "
                   "shim) stays alive per container.")
    colour = "#0072B2"
    order = 10
    roles = (APP, RUNTIME, DOCKER_PROXY)
    stack_layers = ("hardware", "host kernel", "container engine (runc; namespaces + cgroups)", "app")
    fixed_roles = (DOCKERD, CONTAINERD)
    tools = (Tool("docker_sdk", distribution="docker"),)  # the Docker SDK it builds and runs through
    Options = ContainerOptions
    ready_deadline_s = 30.0
    runs_app_as = Layer.CONTAINER

    engine_name: ClassVar[str | None] = None  # each engine's class (engines.VARIANTS) sets its own

    def __new__(cls, options=None, *args, **kwargs):
        """A variant is run by its engine's class (a subclass of this one's, such as a test's stand-in,
        gets it mixed in under itself), under the same name and declaration slots."""
        return super().__new__(engines.variant_class(cls, options))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._client = None
        self._image = None  # bench.images.docker_image.DockerImage once prepared
        self._launching: str | None = None  # the name of a container being created and started
        self._runtime: runtimes.RuntimeInfo | None = None  # as dockerd has it registered, once prepared
        self._scratch: storage.Scratch | None = None  # the scratch space of a launch under way
        self._data_root: str | None = None  # dockerd's data directory (overlay layers, volumes), once prepared
        self._engine: private_engine.PrivateEngine | None = None  # userland_proxy: false, once prepared

    # ---- availability, housekeeping, declaration ---------------------------------------

    @classmethod
    def check(cls) -> str | None:
        return engine.unavailable_reason()  # every engine runs the image Docker builds

    # Each engine's part of the housekeeping below (its class overrides these; [] by default).
    @classmethod
    def engine_doctor_lines(cls) -> list[str]:
        return []

    @classmethod
    def engine_leftovers(cls) -> list[str]:
        return []

    @classmethod
    def engine_clean(cls, run_id: str | None) -> list[str]:
        return []  # bind folders: bench.scratch, like every temp folder

    @classmethod
    def doctor_lines(cls) -> list[str]:
        return [line for variant in engines.variant_classes() for line in variant.engine_doctor_lines()]

    @classmethod
    def find_leftovers(cls) -> list[str]:
        return [line for variant in engines.variant_classes() for line in variant.engine_leftovers()]

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        return [line for variant in engines.variant_classes() for line in variant.engine_clean(run_id)]

    @classmethod
    def prune_caches(cls) -> list[str]:
        return engine.prune_images()

    def variant(self) -> str:
        options: ContainerOptions = self.options  # type: ignore[assignment]
        parts = [options.network]
        if options.cpus is not None:
            parts.append(f"cpus={options.cpus:g}")
        if options.memory is not None:
            parts.append(f"mem={options.memory}")
        if options.base_image is not None:
            parts.append(f"base={options.base_image}")
        if not options.pin_helpers:
            parts.append("helpers-unpinned")
        if options.scratch != "tmpfs":
            parts.append(f"scratch={options.scratch}")
        if options.runtime != runtimes.DEFAULT_RUNTIME:  # before prepare(): the name; after: + gVisor's platform
            parts.append(self._runtime.variant_part() if self._runtime else options.runtime)
        parts += networking.variant_parts(options.userland_proxy, options.reach)
        return ",".join(parts)

    def explain(self) -> str:
        if self._runtime and self._runtime.gvisor:  # not "a host process run by the same kernel": its own words
            return (runtimes.explain(self._runtime) + self._network_explanation()).strip()
        return self.explanation + self._network_explanation() + (runtimes.explain(self._runtime) if self._runtime
                                                                 else "") + storage.explain_docker(self.options,
                                                                                                   self._data_root)

    def caveats(self) -> list[str]:
        return (runtimes.caveats(self._runtime) if self._runtime else []) + self._network_caveats()

    def _gvisor(self) -> bool:
        return self._runtime.gvisor if self._runtime else self.options.runtime == "runsc"  # type: ignore[attr-defined]

    def layer_stack(self) -> tuple[str, ...]:
        options: ContainerOptions = self.options  # type: ignore[assignment]
        proxy = networking.stack_detail(options.network, options.userland_proxy, options.reach)
        if self._gvisor():
            return ("hardware", "host kernel", f"container engine (runsc{proxy})",
                    "sandbox kernel (gVisor sentry; every syscall)", "app")
        return ("hardware", "host kernel", f"container engine ({options.runtime}; namespaces + cgroups{proxy})", "app")

    def describe(self) -> dict:
        described = super().describe()
        if self._gvisor():  # the request path, the words, the hue and the roles of a sandbox are its own
            described["stack"] = ("app → gVisor sentry (a user-space kernel that intercepts every system call) → "
                                  "host kernel" + ("" if self.options.network == "host"  # type: ignore[attr-defined]
                                                   else " (+ NAT and a userland proxy for a published port)"))
            described["narration"] = GVISOR_NARRATION
            described["colour"] = GVISOR_COLOUR
            described["roles"][SANDBOX.key] = SANDBOX.as_dict()
        return described

    def fixed_processes(self) -> list[RoleProcess]:
        return self._engine.processes() if self._engine is not None else daemon_processes()

    # ---- preparation -------------------------------------------------------------------

    def client(self):
        """The Docker SDK client every engine builds the app's image with (created once; the private
        engine's once it runs); SetupError when no daemon answers."""
        if self._engine is not None and self._engine.client is not None:
            return self._engine.client
        if self._client is None:
            try:
                self._client = engine.docker_sdk().from_env(timeout=30)
            except Exception as error:
                raise SetupError(f"no Docker daemon answers at {engine.daemon_address()}: {error}") from None
        return self._client
