"""The setups: one module per way of running the app (bare, container, vm, ...).

Each module defines a subclass of `bench.setups.base.Setup` and registers it with
`@register`. `get(name)` and `names()` find them; see bench/setups/base.py for the contract.
"""

from bench.errors import SetupError
from bench.setups.base import Setup
from bench.setups.registry import classes, get, names, register, unregister

__all__ = ["Setup", "SetupError", "classes", "get", "names", "register", "unregister"]
