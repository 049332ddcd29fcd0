"""Setup registry: every module in this package that defines a `Setup` registers it by name.

Adding a setup (gVisor, a container inside a VM, a remote Docker host) is one new module
here with `@register` on its class; nothing else in the tree changes.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings

from bench.setups.base import Setup, SetupError

_REGISTRY: dict[str, type[Setup]] = {}
_BROKEN: dict[str, str] = {}
_loaded = False

# The order setups are shown and run in: the bare process first, always.
PREFERRED_ORDER = ("bare", "container", "vm")


def register(cls: type[Setup]) -> type[Setup]:
    """Class decorator: make a setup known under its `name`."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if module.name == "base" or module.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{__name__}.{module.name}")
        except Exception as error:  # a broken plugin warns; the others still work
            _BROKEN[module.name] = f"{type(error).__name__}: {error}"
            warnings.warn(f"setup module {module.name!r} failed to load: {error}", RuntimeWarning, stacklevel=2)


def names() -> list[str]:
    """Registered setup names, bare first."""
    _load_all()
    order = {name: index for index, name in enumerate(PREFERRED_ORDER)}
    return sorted(_REGISTRY, key=lambda name: (order.get(name, len(order)), name))


def get(name: str) -> type[Setup]:
    """The setup class for a name; SetupError listing the valid names otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SetupError(f"unknown setup {name!r}; choose from: {', '.join(names())}") from None


__all__ = ["Setup", "SetupError", "get", "names", "register"]
