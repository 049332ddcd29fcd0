"""End to end: `bench run --setups bare` measures real numbers that agree with each other."""

from __future__ import annotations

import json

import psutil
import pytest
from typer.testing import CliRunner

from bench import results
from bench.cli import app

pytestmark = pytest.mark.integration


def test_bare_run_end_to_end(tmp_path):
    outcome = CliRunner().invoke(app, ["run", "--setups", "bare", "--workloads", "hello,cpu", "--duration", "1",
                                       "--warmup", "0.3", "--repeat", "2", "--out", str(tmp_path), "--no-report"])
    assert outcome.exit_code == 0, outcome.output
    (run_dir,) = list(tmp_path.iterdir())
    record = results.load_run(run_dir)
    assert record.status == "complete" and len(record.trials) == 4
    assert record.machine.cpu_model and record.pinning.app_cpus
    for trial in record.trials:
        assert trial.status == "ok", trial.error
        load = trial.load
        assert load.requests > 10 and load.errors == {}
        # What the generator counted matches what the app says it served (warm-up included).
        assert trial.inside.requests_served == load.sent
        assert 0 < load.latency_ms.p50 <= load.latency_ms.p99 <= load.latency_ms.p999
        assert trial.roles["app"].cpu_user_s > 0
        assert trial.cpu_us_per_request.user_us > 0
        assert 5e6 < trial.memory_bytes.rss < 500e6
        # The host-side sampler and the app's own getrusage agree on the app's CPU within 30%: the
        # sampler counts the measured window only, the app's /stats delta the warm-up too, so the
        # host's figure lies between the window's share of the app's and all of it.
        host_cpu = trial.roles["app"].cpu_user_s + trial.roles["app"].cpu_sys_s
        inside_cpu = trial.inside.cpu_user_s + trial.inside.cpu_sys_s
        window_share = 1.0 / (1.0 + 0.3)  # --duration 1, --warmup 0.3
        assert inside_cpu * window_share * 0.7 - 0.05 <= host_cpu <= inside_cpu * 1.3 + 0.05, (host_cpu, inside_cpu)
        assert (run_dir / trial.files.latency_ms).is_file() and (run_dir / trial.files.processes).is_file()
    cpu = [t for t in record.trials if t.workload == "cpu"]
    hello = [t for t in record.trials if t.workload == "hello"]
    assert min(t.cpu_us_per_request.user_us for t in cpu) > max(t.cpu_us_per_request.user_us for t in hello)
    fresh = [t for t in record.trials if t.startup_s is not None]
    assert len(fresh) == 2 and all(0 < t.startup_s < 15 for t in fresh)

    shown = CliRunner().invoke(app, ["show", str(run_dir), "--format", "json"])
    summary = json.loads(shown.output)
    assert {row["workload"] for row in summary["results"]} == {"hello", "cpu"}
    row = summary["results"][0]
    assert row["throughput_rps"]["low"] <= row["throughput_rps"]["median"] <= row["throughput_rps"]["high"]
    # Nothing left running: the apps this run spawned are gone.
    assert [p for p in psutil.Process().children(recursive=True) if "bench.app" in " ".join(p.cmdline())] == []


def test_density_stores_memory_per_instance_by_each_measure_and_the_host_drop(tmp_path):
    scenario = tmp_path / "density.yaml"
    scenario.write_text("name: dense\nsetups: [bare]\nworkloads:\n"
                        "  - {name: density, kind: density, instances: [1, 3], duration: 1, warmup: 0.5}\nrepeat: 1\n")
    outcome = CliRunner().invoke(app, ["run", str(scenario), "--out", str(tmp_path / "out"), "--no-report"])
    assert outcome.exit_code == 0, outcome.output
    (run_dir,) = list((tmp_path / "out").iterdir())
    record = results.load_run(run_dir)
    for trial in record.trials:
        memory, instances = trial.memory_bytes, trial.facts.instances
        assert trial.workload == f"density-x{instances}"
        assert len({p.pid for p in trial.processes if p.role == "app"}) == instances
        # Private pages are a part of the proportional share, which is a part of the resident set.
        assert 0 < memory.uss_per_instance <= memory.pss_per_instance <= memory.rss_per_instance
        assert memory.available_drop_per_instance == memory.available_drop / instances
        host = trial.host
        assert host.mem_available_before_bytes > 0 and host.mem_available_after_bytes > 0
    summary = json.loads(CliRunner().invoke(app, ["show", str(run_dir), "--format", "json"]).output)
    assert summary["summary_version"] == 3 and "memory_per_instance_mb.uss" in summary["memory_figures"]
    per_instance = summary["results"][0]["memory_per_instance_mb"]
    assert set(per_instance) == {"uss", "pss", "rss", "available_drop"}
