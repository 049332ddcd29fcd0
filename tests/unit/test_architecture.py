"""The shape of the code: one way imports run, small modules and functions, one vocabulary.

These read the source (ast) or run `bench` in a fresh interpreter, so they fail the moment a
change makes outputs depend on setups, or a module grows past what a reader can hold.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from tests import chart_stand_in
from tests.unit.test_plots import copy_run

BENCH = Path(__file__).resolve().parents[2] / "bench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@functools.cache  # the source does not change during a test session; each module is read and parsed once
def _modules() -> dict[str, Path]:
    found = {}
    for path in BENCH.rglob("*.py"):
        parts = list(path.relative_to(BENCH.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node that can run: all but what sits under `if TYPE_CHECKING:` (annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


@functools.cache
def _imports(path: Path, module: str, top_level_only: bool) -> frozenset[str]:
    """The bench modules a file imports, at module level or anywhere (inside functions too). `from
    package import module` depends on that module; on the package only for a name defined in it."""
    tree = _tree(path)
    nodes = tree.body if top_level_only else list(_runtime_nodes(tree))
    known = _modules()
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            names |= submodules & set(known)
            if submodules - set(known):
                names.add(node.module)
    return frozenset(name for name in names if name in known and name != module)


def test_no_module_is_over_400_lines_and_no_function_over_60():
    too_long = []
    for module, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{module}: {len(text.splitlines())} lines")
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_counting_imports_inside_functions():
    graph = {module: _imports(path, module, top_level_only=False) for module, path in _modules().items()}
    assert _cycles(graph) == []


def test_the_cycle_check_sees_an_import_inside_a_function():
    """The rule above can fail: two modules that import each other, one of them inside a function."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert _cycles(graph) == [frozenset({"a", "b"})]


@pytest.mark.parametrize("package", ["bench.images", "bench.load", "bench.metrics", "bench.results",
                                     "bench.model", "bench.vocabulary", "bench.roles", "bench.app", "bench.outputs.export",
                                     "bench.gate", "bench.outputs.live", "bench.countdown"])
def test_lower_layers_import_nothing_from_setups(package):
    for module, path in _modules().items():
        if module == package or module.startswith(package + "."):
            wrong = {name for name in _imports(path, module, top_level_only=False) if name.startswith("bench.setups")}
            assert not wrong, f"{module} imports {wrong}"


# Each setup, engine, runtime and app name, and the modules that own it: nowhere else may a string in
# the code be that name (any case), so knowledge of one layer or app sits in its module, and others
# read what it declares (a setup's words and roles, an app's `default`, a path's DNAT chain).
OWNERS = {
    "bare": ("bench.setups.bare",),
    "container": ("bench.setups.container",),
    "vm": ("bench.setups.vm",),
    "container-in-vm": ("bench.setups.vm_container",),
    **{engine: ("bench.setups.container",) for engine in ("docker", "podman")},
    "docker-proxy": ("bench.setups.container",),  # Docker's userland proxy (the container setup's proxy role)
    "qemu": ("bench.setups.vm",),  # the VM's hypervisor (its version is the VM setup's declared tool)
    **{runtime: ("bench.setups.container",) for runtime in ("runsc", "gvisor")},
    # runc and crun run in Docker and Podman, and inside the VM of container-in-vm, whose guest image
    # installs them: each place says which it supports.
    **{runtime: ("bench.setups.container", "bench.setups.vm_container", "bench.images.guest_runtime")
       for runtime in ("runc", "crun")},
    "python": ("bench.apps.python", "bench.app"),  # bench.app: the python app's server and its command
    "nginx": ("bench.apps.nginx",),
    "image": ("bench.apps.image",),
}
# Where a string equals such a name and is not that setup, runtime or app, or is a stored fact.
NAMED_ELSEWHERE = {
    ("bench.results", "python"): "FIRST_APP: format history, the one app every run ran before format 4",
    ("bench.machine", "python"): "the Python interpreter's version, a machine fact",
    ("bench.outputs.report.context", "python"): "the machine's Python interpreter (a settings row)",
    ("bench.fleet.model", "python"): "the machine's Python interpreter (a row of the fleet's table)",
    ("bench.fleet.legacy", "python"): "the old inventory's `python` key: the host's interpreter",
    ("bench.fleet.playbooks.files.probe", "python"): "the host's interpreter version, probed on a fleet host",
    ("bench.images.rootfs", "python"): "the interpreter's files and name inside a root filesystem",
    ("bench.images.guest_runtime", "python"): "the interpreter run by the guest's privilege-drop probe",
    ("bench.images.docker_image", "image"): "its temporary folder's kind (bench.scratch), not the image app",
    ("bench.scratch", "image"): "the kinds of temporary folders, named after who makes them",
    ("bench.scratch", "nginx"): "the same: the reference nginx load server's folder",
    ("bench.load.reference_nginx", "nginx"): "the nginx load generators are checked against, not the nginx app",
    ("bench.scenario.app_spec", "image"): "the scenario's `image:` key (a user's image by reference)",
    ("bench.setups.container.podman", "image"): "Podman's `image exists` command",
    ("bench.setups.container.runtimes", "image"): "the Docker SDK's `image` argument",
}


def _names_outside_their_modules() -> set[tuple[str, str]]:
    found = set()
    for module, path in _modules().items():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in OWNERS:
                name = node.value.lower()
                if not any(module == owner or module.startswith(owner + ".") for owner in OWNERS[name]):
                    found.add((module, name))
    return found


def test_no_setup_runtime_or_app_name_outside_its_own_module():
    found = _names_outside_their_modules()
    assert found - set(NAMED_ELSEWHERE) == set(), "a name outside the module that owns it"
    assert set(NAMED_ELSEWHERE) - found == set(), "allowed but no longer there: drop it from NAMED_ELSEWHERE"


def test_every_built_in_setup_and_app_has_its_owner_listed():
    from bench.apps import registry as apps
    from bench.setups import registry as setups

    built_in = {name for registry in (setups.SETUPS, apps.APPS) for name in registry.names()
                if registry.get(name).__module__.startswith("bench.")}
    assert built_in <= set(OWNERS)


def _fresh_python(code: str) -> set[str]:
    """The bench modules a fresh interpreter has loaded after running code."""
    probe = chart_stand_in.INSTALL_CODE + code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('bench'))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=BENCH.parent)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_reading_results_imports_no_setup_load_or_metrics_code(tmp_path):
    first, second = copy_run(tmp_path / "a"), copy_run(tmp_path / "b")
    code = f"""
from typer.testing import CliRunner
from bench.cli import app
runner = CliRunner()
for args in (["show", {str(first)!r}], ["show", {str(first)!r}, "--format", "json"], ["report", {str(first)!r}],
             ["list", "--results", {str(first.parent)!r}],
             ["compare", {str(first)!r}, {str(second)!r}, "--out", {str(tmp_path / 'cmp')!r}],
             ["show", {str(first)!r}, "--format", "markdown"], ["show", {str(first)!r}, "--format", "csv"],
             ["compare", {str(first)!r}, {str(second)!r}, "--format", "csv", "--fail-on", "throughput_rps:-10%"]):
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, (args, outcome.output)
"""
    loaded = _fresh_python(code)
    wrong = sorted(m for m in loaded if m.startswith(("bench.setups", "bench.load", "bench.metrics",
                                                      "bench.runner", "bench.images")))
    assert wrong == []


def test_parsing_a_scenario_reads_the_setups_declarations_and_none_of_their_machinery():
    """A scenario's setup options are validated at parse time (with file, line and field), so each
    named setup's declaration module is read: for the VM, bench.setups.vm, whose heavy parts (QEMU,
    console, kernel, initramfs) are imported only when a VM is prepared. None of those, no image
    builder, no load generator, sampler or runner, and no Docker SDK may load to parse a file."""
    probe = ("from bench.scenario import parse_scenario\n"
             "parse_scenario('name: t\\nsetups: [bare, container, vm, container-in-vm]\\nworkloads: [hello]\\n')\n"
             "import sys\nassert 'docker' not in sys.modules, 'the Docker SDK was imported'\n")
    loaded = _fresh_python(probe)
    assert {"bench.setups.vm", "bench.setups.container", "bench.setups.vm_container"} <= loaded  # declarations
    heavy = sorted(m for m in loaded if m.startswith(("bench.setups.vm.", "bench.images", "bench.load",
                                                      "bench.metrics", "bench.runner", "bench.model", "bench.outputs.plots")))
    assert heavy == []


MAX_CLASS_LINES = 250


def test_no_class_over_250_lines():
    long = {}
    for module, path in _modules().items():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long[f"{module}.{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}, f"over {MAX_CLASS_LINES} lines: {long}"


def test_outputs_read_the_model_only():
    """Terminal, live view, report, charts, exports, compare's page and the fleet's view: none of them
    reads stored files, runs anything or measures; they go through bench.model."""
    lower = ("bench.results", "bench.runner", "bench.setups", "bench.load", "bench.metrics", "bench.trial_files")
    wrong = {}
    for module, path in _modules().items():
        if module == "bench.outputs" or module.startswith("bench.outputs."):
            found = {name for name in _imports(path, module, top_level_only=False) if name.startswith(lower)}
            if found:
                wrong[module] = found
    assert wrong == {}


def _raw_key_reads(tree: ast.AST) -> list[str]:
    """Reads of a mapping by a literal key: `x["pss"]`, `x.get("pss")` (the environment's aside)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            found.append(ast.unparse(node))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ast.unparse(node.func.value) != "os.environ"):
            found.append(ast.unparse(node))
    return found


def test_outputs_read_typed_figures_not_keys():
    """Every output reads the model's typed rows and figures (bench.outputs.rows, bench.model): a
    figure read by a key string would be a second, unchecked name for it."""
    found = {module: reads for module, path in _modules().items()
             if (module == "bench.outputs" or module.startswith("bench.outputs.")) and (reads := _raw_key_reads(_tree(path)))}
    assert found == {}


def test_the_key_read_check_sees_both_forms():
    tree = ast.parse("cell.memory_mb['pss']\nrow.get('label')\nos.environ.get('TERM')\nrow.label\nfigures[key]")
    assert _raw_key_reads(tree) == ["cell.memory_mb['pss']", "row.get('label')"]


# Result-model fields that are mappings with no fixed keys, each with why; every other field is a
# typed block (bench.records) whose field names carry their units.
FREE_FORM_FIELDS = {
    ("TrialRecord", "engine"): "the engine's own accounting: each engine reports its own counters",
    ("LoadSummary", "notes"): "the generator's own remarks",
    ("SetupSpecRecord", "options"): "each setup's own Options (a plugin's too), validated by that setup",
    ("NetworkPathRecord", "facts"): "what a setup says about its path (a private engine, a container's IP)",
}


def _untyped(annotation) -> bool:
    """A bare dict, or a dict whose values are dicts or Any: keys nobody declared."""
    if annotation in (dict, typing.Any):
        return True
    if typing.get_origin(annotation) is dict:
        return any(_untyped(arg) for arg in typing.get_args(annotation)[1:])
    return any(_untyped(arg) for arg in typing.get_args(annotation))


def test_no_untyped_mapping_in_the_result_models():
    import pydantic

    import bench.fleet.record
    import bench.path_records
    import bench.records
    import bench.results

    found = set()
    for module in (bench.results, bench.records, bench.path_records, bench.fleet.record):
        for model in vars(module).values():
            if isinstance(model, type) and issubclass(model, pydantic.BaseModel) and model.__module__ == module.__name__:
                found |= {(model.__name__, name) for name, field in model.model_fields.items()
                          if _untyped(field.annotation)}
    assert found == set(FREE_FORM_FIELDS), f"new: {found - set(FREE_FORM_FIELDS)}; typed since: {set(FREE_FORM_FIELDS) - found}"


def _holds_a_dict(annotation) -> bool:
    """dict itself, or a type built from it (dict[str, int], dict | None, tuple[dict, ...])."""
    return annotation is dict or typing.get_origin(annotation) is dict or any(
        _holds_a_dict(arg) for arg in typing.get_args(annotation))


def test_no_dict_field_in_the_progress_events():
    """Every event says what it carries in typed fields (bench.events): no bag of keys a renderer guesses."""
    import dataclasses

    import bench.events
    from bench.results import RunRecord, TrialRecord

    found = set()
    for cls in vars(bench.events).values():
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == "bench.events":
            hints = typing.get_type_hints(cls, localns={"RunRecord": RunRecord, "TrialRecord": TrialRecord})
            found |= {(cls.__name__, field.name) for field in dataclasses.fields(cls)
                      if _holds_a_dict(hints[field.name])}
    assert found == set()
