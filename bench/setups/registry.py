"""The setup registry: every module in bench.setups that defines a `Setup` registers it by name,
and so does every plugin of the `layerbench.setups` entry-point group (bench.registry).

Adding a setup (gVisor, a container inside a VM, a remote Docker host) is one new module in
bench/setups/ with `@register` on its class, or a plugin package; nothing else in the tree changes.
"""

from __future__ import annotations

from bench.registry import Registry
from bench.setups.base import Setup

SETUPS: Registry[Setup] = Registry(
    "setup", "bench.setups", "layerbench.setups", skip={"base", "registry", "procutil", "readiness"},
    key_of=lambda cls: cls.name, order_of=lambda cls: (not cls.baseline, cls.order))  # the baseline first
_REGISTRY = SETUPS.entries  # what tests replace entries of (tests/stand_ins.py)

register = SETUPS.register
unregister = SETUPS.unregister
names = SETUPS.names
get = SETUPS.get
broken = SETUPS.broken  # modules that failed to import: name -> the error (shown by `bench doctor`)


def classes() -> list[type[Setup]]:
    """Every registered setup class, in display order."""
    return [get(name) for name in names()]
