"""Two `bench run` at once into the same results folder: both complete, in distinct run folders,
with no port or container-name collision, and nothing left behind."""

from __future__ import annotations

import pytest

from bench import results
from bench.setups.container import ContainerSetup
from tests.conftest import require
from tests.integration.test_faults import Run, assert_nothing_left, containers_of

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def test_two_runs_at_once_into_one_folder(tmp_path):
    require(ContainerSetup.check() is None, f"container setup unavailable: {ContainerSetup.check()}")
    out = tmp_path / "results"
    args = ["run", "--setups", "bare,container", "--workloads", "hello", "--duration", "1", "--warmup", "0.2",
            "--repeat", "1", "--out", str(out), "--no-report"]
    runs = [Run(args, tmp_path / f"run{index}") for index in range(2)]
    seen_containers: dict[int, set[str]] = {run.pid: set() for run in runs}
    while any(run.popen.poll() is None for run in runs):
        for run in runs:
            run.apps()
            seen_containers[run.pid].update(containers_of(run.pid))
    for run in runs:
        assert run.wait() == 0, run.stdout + run.stderr
    run_dirs = results.list_runs(out)
    assert len(run_dirs) == 2 and run_dirs[0].name != run_dirs[1].name
    records = [results.load_run(run_dir) for run_dir in run_dirs]
    for record in records:
        assert record.status == "complete"
        assert sorted((t.setup, t.status) for t in record.trials) == [("bare", "ok"), ("container", "ok")]
    ports = [getattr(trial.facts, "pid", None) or getattr(trial.facts, "container_name", None)
             for r in records for trial in r.trials]
    assert len(set(ports)) == 4
    assert not seen_containers[runs[0].pid] & seen_containers[runs[1].pid]
    assert all(seen_containers.values()), "each run was seen running its own container"
    assert not runs[0].app_pids & runs[1].app_pids
    for run in runs:
        assert_nothing_left(run)
