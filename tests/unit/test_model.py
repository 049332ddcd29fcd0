"""The model's caveats: computed once, from stored trials, for every output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.load.spec import LoadResult
from bench.model import Run
from bench.outputs.report import render_report
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
    assert caveats[0].flag == "generator-bound in 2 trial(s)"
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
    for layer in run.prepared_layers:
        layer.caveats = [shared] if layer.setup != "bare" else ["its own words"]
    texts = [caveat.text for caveat in run.caveats() if caveat.kind == "layer"]
    others = [label(layer.setup, layer.variant) for layer in run.layers if layer.setup != "bare"]
    assert len(others) >= 2 and texts.count("its own words") == 1
    assert [text for text in texts if shared in text] == [f"{', '.join(others)}: {shared}"]


def test_doubts_are_one_line_per_kind_naming_the_cells_and_the_most_serious_first(tmp_path):
    """A busy machine over 4 cells and a stall in one: two lines, not five, the stall first (it
    threatens a verdict more), each naming its cells and how far it goes."""
    def disturbed(data):
        for trial in data["trials"]:
            if trial["workload"] in ("hello", "cpu") and trial["setup"] in ("bare", "vm"):
                trial["host"]["foreign_cpu_cores"] = 1.4 if trial["repeat"] == 0 else 0.3
            if (trial["setup"], trial["workload"], trial["repeat"]) == ("vm", "cpu", 1):
                trial["load"]["longest_gap_ms"] = 8000.0  # over 50 medians (128 ms) and a second
    run = Run.load(copy_run(tmp_path, disturbed))
    busy_caveats = [c for c in run.caveats() if c.kind == "busy"]
    doubts = [d for d in run.doubts() if d.kind in ("busy", "stall")]
    assert len(busy_caveats) == 4 and [d.kind for d in doubts] == ["stall", "busy"]
    stall, busy = doubts
    assert stall.text == "Stalls (no request completed for a second or more) in 1 cell(s), 1 trial(s): vm (tcg) / cpu"
    assert busy.text.startswith("Busy machine in 4 cell(s), in 8 of ")
    assert "trials others used up to 1.40 cores: bare / hello, vm (tcg) / hello, bare / cpu, vm (tcg) / cpu" in busy.text
    assert set(busy.subjects) == {c.subject for c in busy_caveats}
