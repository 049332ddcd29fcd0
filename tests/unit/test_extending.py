"""docs/extending.md's worked examples, run: each example file in docs/examples/ is loaded as a
plugin would be, and used the way the doc says. The doc quotes each file whole, so the code a
reader copies is the code tested here."""

from __future__ import annotations

import importlib.util
import sys
import urllib.request
from pathlib import Path

import pytest

from bench.apps import registry as app_registry
from bench.apps.base import Layer, Place, Tree
from bench.model import Run
from bench.setups import registry as setup_registry
from bench.setups.bare import BareSetup
from bench.setups.base import Pinning

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
FIXTURE = ROOT / "tests" / "fixtures" / "small_run"


def _load(name: str):
    """An example module, imported from its file as a plugin's module would be."""
    spec = importlib.util.spec_from_file_location(f"layerbench_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def nice_setup():
    module = _load("nice_setup")
    yield module.NiceSetup
    setup_registry.unregister("nice")


@pytest.fixture
def static_app():
    module = _load("static_files_app")
    yield module
    app_registry.unregister("static-files")


def _get(instance, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"{instance.base_url}{path}", timeout=5) as reply:
        return reply.read()


def test_the_doc_quotes_every_example_whole():
    doc = (ROOT / "docs" / "extending.md").read_text()
    for example in sorted(EXAMPLES.glob("*.py")):
        assert example.read_text().strip() in doc, f"docs/extending.md does not quote {example.name} as it is"


def test_a_new_setup_runs_the_app_and_flows_through_the_runner(nice_setup, tmp_path):
    from bench.runner import run_scenario
    from bench.scenario import from_flags

    setup = nice_setup(None, Pinning.default(), "example", tmp_path)
    with setup.running() as instance:
        assert _get(instance, "/hello").startswith(b"hello")
        (app,) = instance.processes()
        assert app.process.nice() == 19
    run_dir = run_scenario(from_flags(["bare", "nice"], ["hello"], duration=0.1, warmup=0.0, repeat=1), tmp_path)
    run = Run.load(run_dir)
    assert {cell.setup for cell in run.cells} == {"bare", "nice"}
    assert "figures measure the neighbours" in (run_dir / "run.json").read_text()  # its caveat, stored


def test_a_new_app_starts_in_the_bare_layer_and_describes_the_others(static_app, tmp_path):
    from bench.scenario import parse_scenario

    app = app_registry.build("static-files")
    setup = BareSetup(None, Pinning.default(), "example", tmp_path, app=app)
    with setup.running() as instance:
        assert _get(instance) == static_app.PAGE
    assert any("one request per connection" in caveat for caveat in setup.describe()["caveats"])  # its caveat
    guest = app.start(Place(Layer.GUEST, "0.0.0.0", 8080, files=Tree(Path("/r"), "d", python="/usr/bin/python3")))
    assert guest.argv[:4] == ["/usr/bin/python3", "-I", "-m", "http.server"] and guest.user == (65534, 65534)
    scenario = parse_scenario("name: s\napp: static-files\nsetups: [bare]\nworkloads: [hello]\n")
    assert scenario.app_specs[0].build().kind == "static-files"


def test_a_new_metric_is_read_off_stored_trials(monkeypatch):
    from bench import figures

    example = _load("p90_metric")
    monkeypatch.setitem(figures.METRICS, example.P90.key, example.P90)
    cell = next(cell for cell in Run.load(FIXTURE).cells if cell.workload == "hello")
    p90, p99 = cell.estimate("latency_p90_ms"), cell.estimate("latency_p99_ms")
    assert p90 is not None and 0 < p90.median < p99.median
    assert figures.metric("latency_p90_ms").title == "p90 latency (ms)"


def test_a_new_output_renders_a_stored_run(monkeypatch):
    from bench.outputs import export

    monkeypatch.setitem(export.FORMATS, "tsv", _load("tsv_export"))
    run = Run.load(FIXTURE)
    lines = export.export_run(run, "tsv").splitlines()
    assert lines[0].split("\t")[:3] == ["label", "workload", "throughput_rps"]
    assert len(lines) == len(run.cells) + 1 and all(line.count("\t") == lines[0].count("\t") for line in lines)
