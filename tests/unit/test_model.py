"""The model's caveats: computed once, from stored trials, for every output."""

from __future__ import annotations

from bench.model import Run
from tests.unit.test_plots import copy_run


def _with_generator(busy: float):
    def edit(data):
        for trial in data["trials"]:
            if trial["setup"] == "bare" and trial["workload"] == "hello":
                trial["load"]["generator_stats"] = {"processes": 1, "cpu_s": 2.9, "busy_fraction": busy,
                                                   "runnable_fraction": busy, "bound": busy >= 0.9}
    return edit


def test_a_generator_bound_cell_is_flagged_in_every_output(tmp_path):
    run = Run.load(copy_run(tmp_path, _with_generator(0.97)))
    caveats = [c for c in run.cell("bare", "default", "hello").caveats() if c.kind == "generator_bound"]
    assert len(caveats) == 1 and "97%" in caveats[0].text and "load: wrk" in caveats[0].text
    assert caveats[0].flag == "generator-bound in 2 repeat(s)"
    assert any(c.kind == "generator_bound" for c in run.caveats())  # the report's and JSON's list


def test_an_app_bound_cell_is_not_flagged(tmp_path):
    run = Run.load(copy_run(tmp_path, _with_generator(0.31)))
    assert not [c for c in run.cell("bare", "default", "hello").caveats() if c.kind == "generator_bound"]


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
