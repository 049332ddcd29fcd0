"""One registry of named plugins, for setups, apps and container engines alike.

A registry finds its entries in two places, the first time a name is asked for (so importing it is
cheap): every module of its built-in package, or of its table of built-in modules (each registers
its class with `@registry.register`), and every entry point of its group in installed distributions
(`[project.entry-points."<group>"]` in a plugin's pyproject.toml, pointing at a module or a class).
A plugin that fails to import, or an entry point that names nothing, warns once and is listed by
`broken()` (`bench doctor` shows it); the other entries still work. An unknown name fails with the
valid names.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from bench.errors import SetupError

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes by name. `key_of(cls)` gives a class's name; `order_of(cls)` its place in names()."""

    def __init__(self, what: str, package: str | None, group: str | None, skip: set[str],
                 key_of: Callable[[type[T]], str], order_of: Callable[[type[T]], object] | None = None,
                 modules: tuple[str, ...] = ()):
        self.what = what  # "setup", "app": the word in messages
        self.package = package  # the built-ins: bench.setups, bench.apps (None: `modules` names them)
        self.modules = modules  # the built-ins when they are not every module of one package
        self.group = group  # the entry-point group of plugins: layerbench.setups, layerbench.apps (None: none)
        self.skip = skip  # modules of the package that are the framework, not entries
        self.key_of = key_of
        self.order_of = order_of or key_of
        self.entries: dict[str, type[T]] = {}
        self.problems: dict[str, str] = {}  # module or entry point -> why it did not load
        self._loaded = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make a class known under its name (tests may register their own)."""
        self.entries[self.key_of(cls)] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Forget an entry registered by hand (a test's fake)."""
        self.entries.pop(name, None)

    def names(self) -> list[str]:
        """Every registered name, in the registry's order."""
        self._load_all()
        return sorted(self.entries, key=lambda name: (self.order_of(self.entries[name]), name))

    def get(self, name: str) -> type[T]:
        """The class of a name; SetupError naming the valid choices otherwise."""
        self._load_all()
        try:
            return self.entries[name]
        except KeyError:
            raise SetupError(f"unknown {self.what} {name!r}; choose from: {', '.join(self.names())}") from None

    def broken(self) -> dict[str, str]:
        """Modules and plugins that failed to load: name -> the error."""
        self._load_all()
        return dict(self.problems)

    def _load_all(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for name in self._builtin_modules():
            self._guarded(name.rpartition(".")[2] if self.package else name,
                          lambda name=name: importlib.import_module(name))
        for point in entry_points(group=self.group) if self.group else ():
            self._guarded(f"{point.name} (plugin {point.value})", lambda point=point: self._load_plugin(point))

    def _builtin_modules(self) -> list[str]:
        if self.package is None:
            return list(self.modules)
        package = importlib.import_module(self.package)
        return [f"{self.package}.{module.name}" for module in pkgutil.iter_modules(package.__path__)
                if module.name not in self.skip and not module.name.startswith("_")]

    def _load_plugin(self, point) -> None:
        loaded = point.load()  # a module registers its classes on import; a class is registered here
        if isinstance(loaded, type):
            self.register(loaded)

    def _guarded(self, label: str, load: Callable[[], object]) -> None:
        try:
            load()
        except Exception as error:  # a broken plugin warns; the others still work
            self.problems[label] = f"{type(error).__name__}: {error}"
            warnings.warn(f"{self.what} module {label!r} failed to load: {error}", RuntimeWarning, stacklevel=4)
