"""Properties over arbitrary input: a scenario parses or fails with ScenarioError, a run.json loads
or fails with ResultsError; never another exception (which would reach a user as a traceback)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.results import FORMAT_VERSION, ResultsError, RunRecord, load_run
from bench.scenario import Scenario, ScenarioError, parse_scenario

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)

# Keys a scenario really has, so the generator reaches deep into validation, not only "unknown key".
SCENARIO_KEYS = ("name", "description", "setups", "workloads", "repeat", "repeat_target", "repeat_cap", "order",
                 "start", "pinning", "seed")
WORKLOAD_KEYS = ("name", "kind", "endpoint", "param", "mode", "connections", "rate", "duration", "warmup", "load",
                 "instances")
plausible_workload = st.dictionaries(st.sampled_from(WORKLOAD_KEYS), values | st.sampled_from(
    ["hello", "cpu", "load", "startup", "density", "open", "closed", "wrk", 1, 0.5, -1, 10**9]), max_size=6)
plausible_setup = (st.sampled_from(["bare", "container", "vm", "hyperv", "../x", ""])
                   | st.dictionaries(st.sampled_from(["bare", "container", "vm", "setup", "options"]),
                                     values | st.dictionaries(st.sampled_from(["network", "cpus", "memory",
                                                                               "accel", "memory_mb", "x"]),
                                                              values, max_size=3), max_size=2))
scenario_data = st.fixed_dictionaries(
    {}, optional={
        "name": st.sampled_from(["ok", "../x", "<b>x</b>", "[/x]", "a" * 100, ""]) | values,
        "description": values,
        "setups": st.lists(plausible_setup, max_size=3) | values,
        "workloads": st.lists(st.sampled_from(["hello", "cpu", "idle", "nope"]) | plausible_workload, max_size=3)
        | values,
        "repeat": st.sampled_from(["auto", 0, 1, 3, 1001, -1, True, 2.5]) | values,
        "pinning": st.sampled_from(["auto", {"app_cpus": [1], "load_cpus": [0]}]) | values,
        "seed": values, "order": values, "start": values, "repeat_cap": values,
    }).flatmap(lambda known: st.dictionaries(st.text(max_size=6), values, max_size=2).map(
        lambda extra: {**extra, **known}))


def _parses_or_scenario_error(text: str) -> None:
    try:
        scenario = parse_scenario(text, "hostile.yaml")
    except ScenarioError as error:
        assert error.problems, "a ScenarioError must say what is wrong"
        for problem in error.problems:
            assert problem.startswith("hostile.yaml:") and "\n" not in problem, problem
        return
    assert isinstance(scenario, Scenario)


@FAST
@given(scenario_data)
def test_any_scenario_mapping_parses_or_raises_scenario_error(data):
    _parses_or_scenario_error(yaml.safe_dump(data))


@FAST
@given(values)
def test_any_yaml_document_parses_or_raises_scenario_error(data):
    _parses_or_scenario_error(yaml.safe_dump(data))


@FAST
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_scenario_error(text):
    _parses_or_scenario_error(text)


RUN_KEYS = ("format_version", "run_id", "status", "created_at", "finished_at", "command_line", "scenario", "machine",
            "pinning", "seed", "order", "skipped", "runner_pid", "repeat_outcome", "trials")
TRIAL_KEYS = ("trial_id", "setup", "variant", "workload", "kind", "repeat", "status", "error", "load", "roles",
              "memory_bytes", "startup_s", "startup_phases_s", "files", "window_t")
plausible_trial = st.dictionaries(st.sampled_from(TRIAL_KEYS), values | st.sampled_from(["ok", "failed", "load", 1]),
                                  max_size=10)
run_data = st.fixed_dictionaries(
    {}, optional={
        "format_version": st.sampled_from([FORMAT_VERSION, 0, -3, FORMAT_VERSION + 1, True, "1", None, 2**70]),
        "run_id": values | st.just("r1"), "created_at": values | st.just("2026-01-01T00:00:00+00:00"),
        "status": st.sampled_from(["running", "complete", "incomplete", "weird"]) | values,
        "trials": st.lists(plausible_trial, max_size=3) | values,
        **{key: values for key in ("finished_at", "command_line", "scenario", "machine", "pinning", "seed",
                                   "order", "skipped", "runner_pid", "repeat_outcome")},
    })


def _loads_or_results_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "run.json").write_text(text)
        try:
            record = load_run(Path(folder))
        except ResultsError as error:
            assert str(error).startswith(str(Path(folder, "run.json"))), error
            return
    assert isinstance(record, RunRecord)
    record.effective_status()  # `bench list` calls it on whatever loaded


@FAST
@given(run_data)
def test_any_run_object_loads_or_raises_results_error(data):
    _loads_or_results_error(json.dumps(data))


@FAST
@given(values)
def test_any_json_document_loads_or_raises_results_error(data):
    _loads_or_results_error(json.dumps(data))


@FAST
@given(st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")))
def test_any_bytes_load_or_raise_results_error(text):
    _loads_or_results_error(text)
