"""Format 6 (typed blocks, bench.records) reads the frozen format-5 run (tests/fixtures/v5_run) with
the same figures, and writes it back without losing any."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.figures import METRICS, MIB_BYTES
from bench.model import Run
from bench.outputs.summary import summarize
from bench.records import CpuPerRequest, LoadSummary, Machine, RoleSample
from bench.results import FORMAT_VERSION, load_run, save_run

V5_RUN = Path(__file__).parent.parent / "fixtures" / "v5_run" / "run"


def _v5_figure(trial: dict, key: str):
    """A figure read straight off the v5 JSON, the way format 5 stored it (not through the registry)."""
    load, cpu, memory = trial["load"], trial["cpu_us_per_request"], trial["memory_bytes"]
    return {"throughput_rps": load.get("throughput_rps") if load else None,
            "latency_p50_ms": load.get("latency_ms", {}).get("p50") if load else None,
            "latency_p99_ms": load.get("latency_ms", {}).get("p99") if load else None,
            "app_time_p50_ms": load.get("app_ms", {}).get("p50") if load else None,
            "cpu_us_per_request": cpu["user"] + cpu["sys"] if cpu else None,
            "memory_pss_mb": memory["pss"] / MIB_BYTES if memory.get("pss") is not None else None,
            "memory_uss_mb": memory["uss"] / MIB_BYTES if memory.get("uss") is not None else None,
            "memory_rss_mb": memory["rss"] / MIB_BYTES if memory.get("rss") is not None else None,
            "startup_s": trial["startup_s"]}[key]


def test_the_frozen_v5_run_migrates_to_typed_blocks():
    stored = json.loads((V5_RUN / "run.json").read_text())
    assert stored["format_version"] == 5  # the fixture stays frozen: never regenerate it with newer code
    record = load_run(V5_RUN)
    assert record.format_version == FORMAT_VERSION == 6
    assert isinstance(record.machine, Machine) and record.machine.hostname == stored["machine"]["hostname"]
    assert record.split is None and record.pinning.app_cpus == stored["pinning"]["app_cpus"]
    load_trial = next(trial for trial in record.trials if trial.kind == "load")
    assert isinstance(load_trial.cpu_us_per_request, CpuPerRequest) and isinstance(load_trial.load, LoadSummary)
    assert next(trial for trial in record.trials if trial.kind == "idle").load is None
    assert all(isinstance(sample, RoleSample) for sample in load_trial.roles.values())
    assert next(trial for trial in record.trials if trial.kind == "startup").cpu_us_per_request is None


# Figures format 5 did not keep: a v5 run has none of them (missing, never invented).
LATER_THAN_V5 = {"app_time_p5_ms"}


@pytest.mark.parametrize("key", sorted(set(METRICS) - LATER_THAN_V5))
def test_every_figure_of_the_v5_run_reads_the_same_after_migration(key):
    stored = json.loads((V5_RUN / "run.json").read_text())["trials"]
    migrated = load_run(V5_RUN).trials
    assert [METRICS[key].of(trial) for trial in migrated] == [_v5_figure(trial, key) for trial in stored]
    assert any(_v5_figure(trial, key) is not None for trial in stored)  # the fixture holds this figure


@pytest.mark.parametrize("key", sorted(LATER_THAN_V5))
def test_a_figure_format_5_did_not_keep_is_missing_in_a_v5_run(key):
    assert all(METRICS[key].of(trial) is None for trial in load_run(V5_RUN).trials)


def test_a_migrated_run_written_as_v6_reads_back_with_the_same_summary(tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(V5_RUN, copy)
    before = summarize(Run.load(copy))
    save_run(copy, load_run(copy))
    assert json.loads((copy / "run.json").read_text())["format_version"] == 6
    assert summarize(Run.load(copy)) == before


def test_a_v5_role_with_a_fractional_thread_count_loads(tmp_path):
    """A role's threads is the mean over the window's samples (bench.metrics.window): 12.5 is a real
    value in stored v5 runs (a gVisor sandbox's), and loading such a run failed."""
    target = tmp_path / "run"
    shutil.copytree(V5_RUN, target)
    data = json.loads((target / "run.json").read_text())
    trial = next(t for t in data["trials"] if t.get("roles"))
    next(iter(trial["roles"].values()))["threads"] = 12.5
    (target / "run.json").write_text(json.dumps(data))
    loaded = next(t for t in load_run(target).trials if t.trial_id == trial["trial_id"])
    assert 12.5 in [role.threads for role in loaded.roles.values()]
