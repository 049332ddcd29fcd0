"""The shape of the code: one way imports run, small modules and functions, one vocabulary.

These read the source (ast) or run `bench` in a fresh interpreter, so they fail the moment a
change makes outputs depend on setups, or a module grows past what a reader can hold.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import chart_stand_in
from tests.unit.test_plots import copy_run

BENCH = Path(__file__).resolve().parents[2] / "bench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REAL_SETUPS = ("bare", "container", "vm", "container-in-vm")


def _modules() -> dict[str, Path]:
    found = {}
    for path in BENCH.rglob("*.py"):
        parts = list(path.relative_to(BENCH.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    """The bench modules a file imports (relative to what exists), at module level or anywhere."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    known = _modules()
    return {name for name in names if name in known and name != module}


def test_no_module_is_over_400_lines_and_no_function_over_60():
    too_long = []
    for module, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{module}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []


def test_module_level_imports_have_no_cycle():
    graph = {module: _imports(path, module, top_level_only=True) for module, path in _modules().items()}
    state: dict[str, int] = {}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        if state.get(module) == 2:
            return
        assert state.get(module) != 1, f"import cycle: {' -> '.join(trail + (module,))}"
        state[module] = 1
        for target in graph.get(module, ()):
            visit(target, trail + (module,))
        state[module] = 2

    for module in graph:
        visit(module, ())


@pytest.mark.parametrize("package", ["bench.images", "bench.load", "bench.metrics", "bench.results",
                                     "bench.model", "bench.vocabulary", "bench.roles", "bench.app", "bench.outputs.export",
                                     "bench.gate", "bench.outputs.live", "bench.countdown"])
def test_lower_layers_import_nothing_from_setups(package):
    for module, path in _modules().items():
        if module == package or module.startswith(package + "."):
            wrong = {name for name in _imports(path, module, top_level_only=False) if name.startswith("bench.setups")}
            assert not wrong, f"{module} imports {wrong}"


def test_no_file_outside_setups_names_a_real_setup():
    """Outputs read layer names and descriptions from the results; only setups/ names a setup."""
    named = []
    for module, path in _modules().items():
        if module.startswith("bench.setups"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in REAL_SETUPS:
                named.append(f"{module}:{node.lineno}: {node.value!r}")
    assert named == []


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
