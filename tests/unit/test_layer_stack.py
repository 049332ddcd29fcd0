"""The layer-stack figure, drawn from stored runs: each setup's declared boxes (format 3), the boxes a
format-2 run gets by migration, and the figures on top of each column."""

from __future__ import annotations

import json

from bench import results
from bench.model import Run
from bench.outputs.plots.stack import _figures, layer_stack
from bench.setups import registry
from bench.setups.base import Pinning
from bench.vocabulary import STACK_LAYERS, stack_kind
from tests.unit.test_plots import copy_run


def test_every_shipped_setup_declares_its_boxes_from_the_vocabulary():
    for cls in registry.classes():
        setup = cls({}, Pinning((1,), (0,)), "test-stack", workdir="/tmp")
        boxes = setup.describe()["stack_layers"]
        assert boxes[0] == "hardware" and boxes[-1] == "app", cls.name
        assert all(stack_kind(box) in STACK_LAYERS for box in boxes), (cls.name, boxes)


def test_a_format_2_run_gets_the_boxes_its_setups_had(tmp_path):
    data = results._v1_to_v2(json.loads((copy_run(tmp_path) / "run.json").read_text()))  # as format 2 stored it
    assert data["format_version"] == 2 and not any("stack_layers" in layer for layer in data["layers"])
    data["layers"].append({"setup": "someone-elses", "variant": "default"})
    folder = tmp_path / "v2"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(data))
    record = results.load_run(folder)
    assert record.format_version == results.FORMAT_VERSION
    boxes = {(layer.setup, layer.variant): layer.stack_layers for layer in record.layers}
    assert boxes[("vm", "tcg")][2].startswith("emulator") and boxes[("bare", "default")] == ["hardware",
                                                                                             "host kernel", "app"]
    assert "docker-proxy" in boxes[("container", "bridge")][2] and boxes[("someone-elses", "default")] == []


def test_the_chart_has_one_column_per_layer_with_what_it_measured(tmp_path):
    run = Run.load(copy_run(tmp_path))
    paths = layer_stack(run, tmp_path / "charts")
    assert [path.suffix for path in paths] == [".png", ".svg"]
    svg = paths[1].read_text()
    for box in ("hardware", "host kernel", "guest kernel", "emulator", "container engine"):
        assert box in svg
    bridge = _figures(run, ("container", "bridge"), "hello")
    assert "× bare" in bridge and "start-up" in bridge and "PSS" in bridge
    assert "req/s" in _figures(run, ("bare", "default"), "hello")  # the baseline shows its own figure


def test_a_run_without_declared_boxes_draws_no_stack(tmp_path):
    def no_boxes(data):
        data["format_version"] = 5  # a run that had the boxes' field (v5), and left it empty
        data["layers"] = [{"setup": "bare", "variant": "default", "baseline": True}]
    assert layer_stack(Run.load(copy_run(tmp_path, no_boxes)), tmp_path / "charts") == []


def test_a_long_engine_box_packs_its_parts_and_a_long_variant_label_breaks_at_commas():
    from bench.outputs.plots._common import tick_label
    from bench.outputs.plots.stack import _box_text

    box = ("container engine (podman rootless; no daemon; runc; user namespace; no cgroups; "
           "rootlessport + slirp4netns)")
    assert _box_text(box, 30).splitlines() == ["container engine", "podman rootless · no daemon", "runc · user namespace",
                                               "no cgroups", "rootlessport + slirp4netns"]
    assert tick_label("container", "bridge,podman-rootless,ports=slirp4netns") == \
        "container\n(bridge,\npodman-rootless,\nports=slirp4netns)"
    assert tick_label("container", "host,podman") == "container\n(host,podman)"
