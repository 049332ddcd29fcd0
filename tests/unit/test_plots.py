"""Charts drawn from the frozen SYNTHETIC fixture run (tests/fixtures/small_run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.model import Run
from bench.model.memory_cake import memory_slices
from bench.outputs.plots import render_all
from bench.outputs.plots._common import colour
from bench.outputs.plots.load import _cdf_points

FIXTURE = Path(__file__).parent.parent / "fixtures" / "small_run"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def copy_run(tmp_path: Path, edit=None) -> Path:
    """A writable copy of the fixture; `edit(data)` may change its run.json first."""
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("charts", "report.html", "_generate.py"))
    if edit is not None:
        data = json.loads((target / "run.json").read_text())
        edit(data)
        (target / "run.json").write_text(json.dumps(data))
    return target


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Run:
    return Run.load(copy_run(tmp_path_factory.mktemp("plots")))


def with_density(data):
    """The fixture plus density trials (x1, x2, x4 of bare and of the VM), built from its idle-like figures."""
    extra = []
    for setup, variant, per_instance_mb in (("bare", "default", (12.0, 10.0, 9.5)), ("vm", "tcg", (250, 249, 251))):
        base = next(t for t in data["trials"] if (t["setup"], t["variant"]) == (setup, variant))
        for count, uss in zip((1, 2, 4), per_instance_mb):
            for repeat in (0, 1):
                trial = json.loads(json.dumps(base))
                mb = 1024 * 1024
                memory = {"rss": 2 * uss * mb * count, "uss": uss * mb * count, "pss": 1.3 * uss * mb * count,
                          "available_drop": (uss + repeat) * mb * count}
                memory.update({f"{k}_per_instance": v / count for k, v in list(memory.items())})
                trial.update(trial_id=f"{setup}--density-x{count}--r{repeat}", workload=f"density-x{count}",
                             kind="density", repeat=repeat, load={}, cpu_us_per_request={}, memory_bytes=memory,
                             facts={**trial["facts"], "instances": count}, files={})
                extra.append(trial)
    data["trials"] += extra
    data["scenario"]["workloads"].append({"name": "density", "kind": "density", "instances": [1, 2, 4]})


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Run:
    return Run.load(copy_run(tmp_path_factory.mktemp("dense"), with_density))


def with_two_apps(data):
    """The fixture's trials as the python app, plus a copy as nginx: 5x the throughput, a fifth of the CPU."""
    extra = []
    for base in data["trials"]:
        trial = json.loads(json.dumps(base))
        trial.update(app="nginx", trial_id=f"nginx--{base['trial_id']}", files={})
        if trial.get("load"):
            trial["load"]["throughput_rps"] *= 5
        trial["cpu_us_per_request"] = {part: value / 5 for part, value in trial.get("cpu_us_per_request", {}).items()}
        extra.append(trial)
    data["trials"] += extra
    data["scenario"]["apps"] = [{"name": "python"}, {"name": "nginx"}]


@pytest.fixture(scope="module")
def two_apps(tmp_path_factory) -> Run:
    return Run.load(copy_run(tmp_path_factory.mktemp("apps"), with_two_apps))


def test_density_cells_give_memory_per_instance_and_the_cross_check(dense):
    cell = dense.cell("bare", "default", "density-x4")
    figures = cell.memory_per_instance_mb
    assert figures.uss == pytest.approx(9.5) and figures.pss == pytest.approx(1.3 * 9.5)
    assert figures.available_drop == pytest.approx(10.0)
    assert not [c for c in cell.caveats() if c.kind == "memory_mismatch"]  # 5% apart: within 25%


def test_a_memory_drop_far_from_uss_is_flagged_with_both_figures(tmp_path):
    def drop_twice_uss(data):
        with_density(data)
        for trial in data["trials"]:
            memory = trial["memory_bytes"]
            if trial.get("kind") == "density" and trial["setup"] == "bare":
                memory["available_drop_per_instance"] = 2 * memory["uss_per_instance"]

    cell = Run.load(copy_run(tmp_path, drop_twice_uss)).cell("bare", "default", "density-x4")
    (caveat,) = [c for c in cell.caveats() if c.kind == "memory_mismatch"]
    assert "fell by 19.0 MiB per instance while USS says 9.5 MiB (100% apart)" in caveat.text
    assert caveat.flag == "memory cross-check off by 100%"


def test_cells_put_bare_first_and_keep_one_colour_per_setup(loaded):
    assert loaded.layer_keys[0] == ("bare", "default")
    assert set(loaded.layer_keys) == {("bare", "default"), ("container", "bridge"), ("container", "host"),
                                      ("vm", "tcg")}
    bridge, host = colour(loaded, "container", "bridge"), colour(loaded, "container", "host")
    assert bridge != host  # variants get shades ...
    assert colour(loaded, "container", "bridge") == bridge  # ... and the same one every time
    assert len({colour(loaded, *key) for key in loaded.layer_keys}) == len(loaded.layer_keys)


def test_render_all_skips_charts_without_data_and_removes_stale_ones(tmp_path):
    def no_startup(data):
        for trial in data["trials"]:
            trial["startup_phases_s"], trial["startup_s"] = {}, None

    run_dir = copy_run(tmp_path, no_startup)
    stale = run_dir / "charts" / "startup_phases.png"  # as if drawn before the data went away
    stale.parent.mkdir()
    stale.write_bytes(PNG_MAGIC)
    names = {p.stem for p in render_all(run_dir)}
    assert "startup_phases" not in names and "startup_distribution" not in names
    assert not stale.exists()
    assert {"headline", "throughput", "memory_layers"} <= names


def test_a_bare_only_run_has_no_headline(tmp_path):
    def bare_only(data):
        data["trials"] = [t for t in data["trials"] if t["setup"] == "bare"]

    names = {p.stem for p in render_all(copy_run(tmp_path, bare_only))}
    assert "headline" not in names
    assert "throughput" in names


def test_vm_memory_splits_into_app_and_guest_kernel(loaded):
    cell = loaded.cell("vm", "tcg", "hello")
    layers = memory_slices(loaded, cell)
    assert set(layers) == {"app", "hypervisor.rest"}
    assert layers["hypervisor.rest"].label == "guest kernel + devices"
    assert layers["app"].mb + layers["hypervisor.rest"].mb == pytest.approx(cell.roles["hypervisor"].pss_mb)
    assert layers["app"].mb == pytest.approx(cell.inside.rss_mb)


def test_cdf_is_thinned_for_big_arrays_but_keeps_the_tail():
    data = np.sort(np.random.default_rng(1).lognormal(size=200_000))
    share, values = _cdf_points(data)
    assert len(values) <= 2000
    assert share[-1] > 0.9999
    assert values[-1] == pytest.approx(np.quantile(data, share[-1]))
