"""The class that runs a Podman variant of a container setup class."""

from __future__ import annotations

import functools


@functools.cache
def variant_class(cls: type) -> type:
    """PodmanContainerSetup for the container setup itself; for a subclass of it (a test's stand-in
    that replaces the lifecycle), that subclass with Podman's declaration mixed in under it, so the
    subclass's own methods still win and Podman's win over Docker's."""
    from bench.setups.container.podman import PodmanContainerSetup

    if issubclass(cls, PodmanContainerSetup):
        return cls
    if cls is PodmanContainerSetup.__mro__[1]:  # ContainerSetup
        return PodmanContainerSetup
    return type(f"{cls.__name__}Podman", (cls, PodmanContainerSetup), {"__module__": cls.__module__})
