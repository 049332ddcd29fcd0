"""The setup registry: every module in bench.setups that defines a `Setup` registers it by name.

Adding a setup (gVisor, a container inside a VM, a remote Docker host) is one new module in
bench/setups/ with `@register` on its class; nothing else in the tree changes. Modules are found
when a name is first asked for, so importing this module is cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings

from bench.errors import SetupError
from bench.setups.base import Setup

_REGISTRY: dict[str, type[Setup]] = {}
_BROKEN: dict[str, str] = {}
_loaded = False
_PACKAGE = "bench.setups"
_NOT_SETUPS = {"base", "registry", "procutil", "readiness"}  # the framework, not setups


def register(cls: type[Setup]) -> type[Setup]:
    """Class decorator: make a setup known under its `name` (tests may register their own)."""
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a setup registered by hand (a test's fake setup)."""
    _REGISTRY.pop(name, None)


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name in _NOT_SETUPS or module.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{_PACKAGE}.{module.name}")
        except Exception as error:  # a broken plugin warns; the others still work
            _BROKEN[module.name] = f"{type(error).__name__}: {error}"
            warnings.warn(f"setup module {module.name!r} failed to load: {error}", RuntimeWarning, stacklevel=2)


def names() -> list[str]:
    """Registered setup names in display order: the baseline first, then by declared order."""
    _load_all()
    return sorted(_REGISTRY, key=lambda name: (not _REGISTRY[name].baseline, _REGISTRY[name].order, name))


def get(name: str) -> type[Setup]:
    """The setup class for a name; SetupError listing the valid names otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SetupError(f"unknown setup {name!r}; choose from: {', '.join(names())}") from None


def classes() -> list[type[Setup]]:
    """Every registered setup class, in display order."""
    return [get(name) for name in names()]


def broken() -> dict[str, str]:
    """Setup modules that failed to import: module name -> the error (shown by `bench doctor`)."""
    _load_all()
    return dict(_BROKEN)
