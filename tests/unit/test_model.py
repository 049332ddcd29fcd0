"""The model's caveats: computed once, from stored trials, for every output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.load.spec import LoadResult
from bench.model import Run
from bench.report import render_report
from bench.runner.figures import load_summary
from bench.scenario import Workload
from tests.stand_ins import bench_ok
from tests.unit.test_plots import copy_run


def _with_generator(busy: float):
    """The bare /hello trials as the runner stores a generator that was `busy` of its CPU over the
    window: the stored figures come from load_summary, as in a real run (the test writes no verdict)."""
    def edit(data):
        for trial in data["trials"]:
            if trial["setup"] == "bare" and trial["workload"] == "hello":
                result = LoadResult(requests=100, errors={}, duration_s=3.0, latency_ms=np.ones(100),
                                    app_ms=np.ones(100), generator_processes=1, generator_cpu_s=3.0 * busy,
                                    generator_wait_s=0.0, generator_busy_fraction=busy)
                stats = load_summary(result, Workload(name="hello", endpoint="hello"))["generator_stats"]
                trial["load"]["generator_stats"] = stats
    return edit


def test_a_generator_bound_cell_is_flagged_in_every_output(tmp_path):
    run_dir = copy_run(tmp_path, _with_generator(0.97))
    run = Run.load(run_dir)
    caveats = [c for c in run.cell("bare", "default", "hello").caveats() if c.kind == "generator_bound"]
    assert len(caveats) == 1 and "97%" in caveats[0].text and "load: wrk" in caveats[0].text
    assert caveats[0].flag == "generator-bound in 2 repeat(s)"
    outputs = {"terminal": bench_ok("show", str(run_dir)),
               "markdown": bench_ok("show", str(run_dir), "--format", "markdown"),
               "csv": bench_ok("show", str(run_dir), "--format", "csv"),
               "json": json.dumps(json.loads(bench_ok("show", str(run_dir), "--format", "json"))),
               "report": render_report(run, charts={})}
    assert [name for name, text in outputs.items() if "generator-bound" not in text.lower()] == []


@pytest.mark.parametrize("busy", [0.31, 0.89])
def test_an_app_bound_cell_is_not_flagged(tmp_path, busy):
    run_dir = copy_run(tmp_path, _with_generator(busy))
    assert not [c for c in Run.load(run_dir).caveats() if c.kind == "generator_bound"]
    assert "generator-bound" not in bench_ok("show", str(run_dir)).lower()


def test_a_caveat_two_layers_share_is_listed_once_naming_both(tmp_path):
    from bench.vocabulary import label

    shared = "TCG: software emulation (no KVM)."
    run = Run.load(copy_run(tmp_path))
    for layer in run.record.layers:
        layer.caveats = [shared] if layer.setup != "bare" else ["its own words"]
    texts = [caveat.text for caveat in run.caveats() if caveat.kind == "layer"]
    others = [label(layer.setup, layer.variant) for layer in run.layers if layer.setup != "bare"]
    assert len(others) >= 2 and texts.count("its own words") == 1
    assert [text for text in texts if shared in text] == [f"{', '.join(others)}: {shared}"]
