"""Which engine runs a container variant: Docker (the default) or Podman, as root or rootless.

The container setup is one setup with the engine as a variant option (`container: {engine:
podman, rootless: true}`); each engine's machinery lives behind it (Docker: this package's
docker_setup, engine, attribution, daemons; Podman: bench.setups.container.podman). This module
holds what they share about the choice: which option combinations make sense, the variant's name for
it, and the registry through which each engine's class is found (`VARIANTS`: each engine module
registers its class, so the container setup never imports an engine's code, and no engine's code
is loaded to validate a scenario).
"""

from __future__ import annotations

import functools

from bench.registry import Registry

ENGINES = ("docker", "podman")
DEFAULT_ENGINE = "docker"
PORT_HANDLERS = ("rootlesskit", "slirp4netns")  # Podman's names for who forwards a rootless published port
DEFAULT_PORT_HANDLER = "rootlesskit"


# The class that runs each engine's containers, a subclass of the container setup with `engine_name`
# set; the table names the modules that register them (loaded the first time a variant is made).
VARIANTS: Registry = Registry(
    "container engine", None, None, skip=set(), key_of=lambda cls: cls.engine_name,
    order_of=lambda cls: (cls.engine_name != DEFAULT_ENGINE, cls.engine_name),  # Docker's first
    modules=("bench.setups.container.docker_setup", "bench.setups.container.podman"))


def engine_of(options) -> str:
    """The engine the options (a dict from a scenario, validated Options, or None) name."""
    engine = options.get("engine") if isinstance(options, dict) else getattr(options, "engine", None)
    return engine or DEFAULT_ENGINE


def variant_classes() -> list[type]:
    """Every engine's class, Docker's first."""
    return [VARIANTS.get(name) for name in VARIANTS.names()]


def variant_class(cls: type, options) -> type:
    """The class that runs `cls` (the container setup, or a subclass of it such as a test's
    stand-in) with the engine the options name."""
    wanted = engine_of(options)
    if wanted not in ENGINES:
        wanted = DEFAULT_ENGINE  # validating the options, next, says what is wrong with them
    if getattr(cls, "engine_name", None) == wanted:
        return cls
    return _with_engine(cls, VARIANTS.get(wanted))


@functools.cache
def _with_engine(cls: type, engine_class: type) -> type:
    """The engine's class for the container setup itself; for a subclass of it (a stand-in that
    replaces the lifecycle), that subclass with the engine's class mixed in under it, so the
    subclass's own methods still win and the engine's win over the container setup's."""
    if issubclass(cls, engine_class):
        return cls
    if cls in engine_class.__bases__:
        return engine_class
    name = f"{cls.__name__}{engine_class.engine_name.title()}"
    return type(name, (cls, engine_class), {"__module__": cls.__module__})


def options_problem(options) -> str | None:
    """One line saying why these container options do not go together, or None."""
    if options.engine != "podman":
        if options.rootless:
            return "rootless: true needs engine: podman (layerbench runs Docker's rootful daemon only)"
        if options.port_handler != DEFAULT_PORT_HANDLER:
            return "port_handler applies to engine: podman with rootless: true"
        return None
    if options.runtime == "runsc":
        return "runtime runsc (gVisor) is registered with Docker only: use engine: docker for it"
    if getattr(options, "reach", "published") != "published":
        return "reach: container-ip loads a container on Docker's bridge: use engine: docker for it"
    if options.port_handler != DEFAULT_PORT_HANDLER and not (options.rootless and options.network == "bridge"):
        return "port_handler: slirp4netns applies to rootless Podman with a published port (network: bridge)"
    return None


def variant_parts(options) -> list[str]:
    """The engine's piece of a variant name: [] for Docker (names stay as they were), else
    "podman" or "podman-rootless", and the port handler when it is not Podman's default."""
    if options.engine != "podman":
        return []
    parts = ["podman-rootless" if options.rootless else "podman"]
    if options.port_handler != DEFAULT_PORT_HANDLER:
        parts.append(f"ports={options.port_handler}")
    return parts


def checked(options):
    """The options themselves when they go together; a ValueError saying why not otherwise."""
    problem = options_problem(options)
    if problem is not None:
        raise ValueError(problem)
    return options
