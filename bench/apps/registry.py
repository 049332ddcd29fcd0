"""The app registry: each module in bench.apps that defines an `App` registers it by kind.

Adding an app is one new module with `@register` on its class. Modules are imported when a name
is first asked for, and import nothing heavy, so validating a scenario stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil

from bench.apps.base import App
from bench.errors import SetupError

_REGISTRY: dict[str, type[App]] = {}
_PACKAGE = "bench.apps"
_NOT_APPS = {"base", "registry"}
_loaded = False


def register(cls: type[App]) -> type[App]:
    """Class decorator: make an app known under its `kind`."""
    _REGISTRY[cls.kind] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _NOT_APPS and not module.name.startswith("_"):
            importlib.import_module(f"{_PACKAGE}.{module.name}")


def kinds() -> list[str]:
    """Every registered app kind, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(kind: str) -> type[App]:
    """The app class of a kind; SetupError listing the known kinds otherwise."""
    _load_all()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise SetupError(f"unknown app {kind!r}; choose from: {', '.join(kinds())}") from None


def build(kind: str, **fields) -> App:
    """An app instance from its kind and the fields a scenario gave it (an image's reference, port, ...)."""
    return get(kind)(**fields)
