"""Which engine runs a container variant: Docker (the default) or Podman, as root or rootless.

The container setup is one setup with the engine as a variant option (`container: {engine:
podman, rootless: true}`); each engine's machinery lives behind it (Docker: this package's
engine, attribution, daemons; Podman: bench.setups.container.podman). This module holds what both
share about the choice: which option combinations make sense, and the variant's name for it.
Standard library only: a scenario is validated without loading any engine's code.
"""

from __future__ import annotations

ENGINES = ("docker", "podman")
DEFAULT_ENGINE = "docker"
PORT_HANDLERS = ("rootlesskit", "slirp4netns")  # Podman's names for who forwards a rootless published port
DEFAULT_PORT_HANDLER = "rootlesskit"


def wants_podman(options) -> bool:
    """True when the options (a dict from a scenario, or validated Options) name engine podman."""
    engine = options.get("engine") if isinstance(options, dict) else getattr(options, "engine", None)
    return engine == "podman"


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
