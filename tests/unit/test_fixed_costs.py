"""Fixed costs apart from per-instance costs: the runner keeps the engine's daemons out of the
instance's figures, the model computes them per cell and per layer, and every output shows them
(drawn from a stored run: the frozen fixture plus fixed blocks, as a run of today stores them)."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from bench.outputs.export.markdown import run_text as run_markdown
from bench.model import Run
from bench.model.fixed import fixed_cost
from bench.outputs.plots.cost import memory_layers
from bench.outputs.plots.density import density
from bench.outputs.report.context import layer_notes
from bench.outputs.rows import density_rows, layer_cost_rows
from bench.results import TrialRecord
from bench.roles import Role, RoleProcess
from bench.runner.measure import measure_trial
from bench.runner.plan import PlannedTrial
from bench.scenario import SetupSpec, Workload
from bench.setups.base import Instance
from bench.outputs.summary import summarize
from bench.outputs.terminal import density_table, fixed_table
from tests.unit.test_plots import copy_run, with_density

MB = 1024 * 1024
DAEMON = {"cpu_user_s": 0.3, "cpu_sys_s": 0.1, "processes": 1, "rss_bytes": 90 * MB, "uss_bytes": 88 * MB,
          "pss_bytes": 89 * MB}


def with_fixed(data):
    """Give the fixture's container trials the fixed block a run stores today (dockerd + containerd)."""
    for trial in data["trials"]:
        if trial["setup"] == "container":
            trial["window_t"] = [100.0, 104.0]
            trial["fixed"] = {"dockerd": DAEMON, "containerd": {**DAEMON, "pss_bytes": 43 * MB, "uss_bytes": 42 * MB,
                                                                "rss_bytes": 44 * MB, "cpu_user_s": 0.02,
                                                                "cpu_sys_s": 0.02}}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run.load(copy_run(tmp_path_factory.mktemp("fixed"), lambda data: (with_density(data), with_fixed(data))))


def test_the_model_gives_fixed_costs_per_cell_and_per_layer(run):
    cell = run.cell("container", "host", "hello")
    assert cell.fixed.total.pss_mb == pytest.approx(132.0)
    assert cell.fixed.roles["dockerd"].cpu_cores == pytest.approx(0.1)  # 0.4 s of CPU over a 4 s window
    assert cell.fixed.total.cpu_cores == pytest.approx(0.11)
    assert run.cell("bare", "default", "hello").fixed is None
    cost = run.layer_cost("container", "bridge")
    assert cost.fixed.pss_mb == pytest.approx(132.0) and cost.per_instance_mb.pss > 0
    assert cost.per_instance_mb.pss == pytest.approx(run.cell("container", "bridge", "hello").memory_mb.pss,
                                                       rel=0.2)  # the instance's own processes only
    assert run.layer_cost("bare", "default").fixed is None


def test_fixed_cost_is_the_median_of_per_trial_sums():
    trials = [TrialRecord(trial_id=f"t{i}", setup="s", variant="v", workload="w", repeat=i, status="ok",
                          window_t=[0.0, 2.0], fixed={"d": {**DAEMON, "pss_bytes": pss * MB}})
              for i, pss in enumerate((10, 20, 90))]
    assert fixed_cost(trials).total.pss_mb == pytest.approx(20.0)
    assert fixed_cost([trials[0].model_copy(update={"fixed": {}})]) is None


def test_every_output_shows_the_fixed_cost_apart(run, tmp_path):
    summary = summarize(run)
    costs = {(row["setup"], row["variant"]): row for row in summary["layer_costs"]}
    assert costs[("container", "host")]["fixed"]["total"]["pss_mb"] == pytest.approx(132.0)
    assert costs[("bare", "default")]["fixed"] is None
    assert "fixed" in summary["memory_figures"]
    assert fixed_table(run).row_count == 2  # the two container variants; bare and the VM have no engine daemons
    rows = {row.label: row for row in layer_cost_rows(run)}
    assert rows["container (bridge)"].fixed_pss == "132.0" and rows["bare"].fixed_pss == "–"
    notes = {note.label: note for note in layer_notes(run)}
    assert any("once per host" in point for point in notes["container (host)"].points)
    assert not any("once per host" in point for point in notes["bare"].points)
    assert memory_layers(run, tmp_path) and density(run, tmp_path)
    assert "once" in (tmp_path / "memory_layers.svg").read_text()
    markdown = run_markdown(run)
    assert "the engine, once: PSS (MiB)" in markdown and "| container (host) | " in markdown.split("once per host")[-1]


def test_density_rows_carry_the_engine_once(tmp_path):
    def dense_containers(data):
        with_density(data)
        for trial in data["trials"]:
            if trial.get("kind") == "density" and trial["setup"] == "bare":
                trial["fixed"] = {"dockerd": DAEMON}
                trial["window_t"] = [0.0, 3.0]
    run = Run.load(copy_run(tmp_path, dense_containers))
    rows = [row for row in density_rows(run) if row.label == "bare"]
    assert rows and all(row.fixed == "89.0" for row in rows)
    assert density_table(run) is not None
    assert density(run, tmp_path / "charts")
    assert "engine daemons" in (tmp_path / "charts" / "density.svg").read_text()


def test_the_runner_samples_fixed_processes_apart_from_the_instance(app_server):
    daemon = subprocess.Popen(["sleep", "30"])
    try:
        me = psutil.Process()
        instance = Instance(port=app_server, processes=lambda: [RoleProcess("app", me)])
        fixed_role = Role("daemon", "a daemon", "#123456")
        trial = PlannedTrial("x/idle/r0", SetupSpec(setup="bare"), Workload(name="idle", kind="idle", duration=0.5,
                                                                          warmup=0.0), 0)
        began = time.monotonic()
        measurement = measure_trial(instance, trial, "default", True, load=None, sampler_hz=20.0,
                                    fixed=lambda: [RoleProcess(fixed_role.key, psutil.Process(daemon.pid))])
        assert time.monotonic() - began < 10
    finally:
        daemon.kill()
        daemon.wait()
    record = measurement.record
    assert set(record.fixed) == {"daemon"} and "daemon" not in record.roles
    assert record.fixed["daemon"].rss_bytes > 0 and record.fixed["daemon"].processes == 1
    assert record.memory_bytes.rss == pytest.approx(record.roles["app"].rss_bytes)  # the daemon is not in it
