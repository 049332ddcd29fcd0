"""bench.registry: setups and apps are found the same way, a broken plugin warns in both (the others
still work, `bench doctor` lists it), and an unknown name is answered with the valid ones."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest

import bench.registry
from bench.apps import registry as apps
from bench.apps.python import PythonApp
from bench.errors import SetupError
from bench.registry import Registry
from bench.setups import registry as setups


class PluginApp(PythonApp):
    """An app a plugin package would ship: here, the python app under another kind."""

    kind = "plugin-python"


def _reloaded(registry: Registry, monkeypatch, *points: EntryPoint) -> None:
    """The registry as if first asked, with these entry points installed."""
    registry.names()  # the built-ins imported (and registered) for good first: a module registers once
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "problems", {})
    monkeypatch.setattr(registry, "entries", dict(registry.entries))
    monkeypatch.setattr(bench.registry, "entry_points", lambda group: [p for p in points if p.group == group])


@pytest.mark.parametrize("registry, group, working", [(setups.SETUPS, "layerbench.setups", "bare"),
                                                      (apps.APPS, "layerbench.apps", "python")])
def test_a_broken_plugin_warns_and_the_others_still_work(registry, group, working, monkeypatch):
    broken = EntryPoint("broken", "layerbench_no_such_plugin_module", group)
    _reloaded(registry, monkeypatch, broken)
    with pytest.warns(RuntimeWarning, match="layerbench_no_such_plugin_module"):
        names = registry.names()
    assert working in names
    assert registry.get(working) is not None
    (problem,) = registry.broken().values()
    assert "ModuleNotFoundError" in problem


def test_a_broken_builtin_module_warns_too(tmp_path, monkeypatch):
    package = tmp_path / "lb_fake_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("from tests.unit.test_registry import FAKE\n@FAKE.register\nclass Good:\n"
                                     "    kind = 'good'\n")
    (package / "bad.py").write_text("raise ImportError('a dependency is missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    global FAKE
    FAKE = Registry("app", "lb_fake_plugins", "layerbench.tests-none", skip=set(), key_of=lambda cls: cls.kind)
    try:
        with pytest.warns(RuntimeWarning, match="'bad' failed to load: a dependency is missing"):
            assert FAKE.names() == ["good"]
        assert FAKE.broken() == {"bad": "ImportError: a dependency is missing"}
    finally:
        for name in ("lb_fake_plugins", "lb_fake_plugins.good", "lb_fake_plugins.bad"):
            sys.modules.pop(name, None)


FAKE: Registry | None = None


def test_a_plugin_entry_point_naming_a_class_registers_it(monkeypatch):
    _reloaded(apps.APPS, monkeypatch, EntryPoint("mine", f"{__name__}:PluginApp", "layerbench.apps"))
    assert apps.get("plugin-python") is PluginApp
    assert "plugin-python" in apps.kinds() and apps.broken() == {}


@pytest.mark.parametrize("get, listed", [(setups.get, "choose from: bare, "), (apps.get, "choose from: image, nginx, python")])
def test_an_unknown_name_lists_the_valid_ones(get, listed):
    with pytest.raises(SetupError, match="unknown (setup|app) 'nope'; " + listed):
        get("nope")


def test_doctor_lists_a_broken_app_plugin(monkeypatch):
    from bench.doctor import doctor_report
    from tests.unit.test_cli import _no_engine_lines

    _no_engine_lines(monkeypatch)

    _reloaded(apps.APPS, monkeypatch, EntryPoint("broken", "layerbench_no_such_app", "layerbench.apps"))
    with pytest.warns(RuntimeWarning):
        found = doctor_report()
    assert [(b["kind"], b["module"]) for b in found["broken"]] == [("app", "broken (plugin layerbench_no_such_app)")]
