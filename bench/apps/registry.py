"""The app registry: each module in bench.apps that defines an `App` registers it by kind, and so
does every plugin of the `layerbench.apps` entry-point group (bench.registry).

Adding an app is one new module with `@register` on its class, or a plugin package. Modules are
imported when a name is first asked for, and import nothing heavy, so validating a scenario stays cheap.
"""

from __future__ import annotations

from bench.apps.base import App
from bench.registry import Registry

APPS: Registry[App] = Registry("app", "bench.apps", "layerbench.apps", skip={"base", "registry"},
                               key_of=lambda cls: cls.kind)
_REGISTRY = APPS.entries  # what tests replace entries of (tests/stand_ins.py)

register = APPS.register
unregister = APPS.unregister
kinds = APPS.names
get = APPS.get
broken = APPS.broken


def default_kind() -> str:
    """The kind of the app a scenario that names none runs (the app that declares `default`)."""
    return next(kind for kind in kinds() if get(kind).default)


def reference_kind() -> str:
    """The kind that runs a user's image, which a scenario gives by its reference."""
    return next(kind for kind in kinds() if get(kind).by_image_reference)


def named_kinds() -> list[str]:
    """The apps a scenario names by kind: every registered one (plugins too) but a user's image."""
    return [kind for kind in kinds() if not get(kind).by_image_reference]


def build(kind: str, **fields) -> App:
    """An app instance from its kind and the fields a scenario gave it (an image's reference, port, ...)."""
    return get(kind)(**fields)
