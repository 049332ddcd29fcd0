"""The results format: round trip, atomic writes, and clear errors for files we cannot read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import results, trial_files
from bench.results import ResultsError, RunRecord, TrialRecord, load_run, save_run


def make_record() -> RunRecord:
    trial = TrialRecord(trial_id="bare--hello--r0", setup="bare", variant="default", workload="hello", repeat=0,
                        status="ok", load={"throughput_rps": 100.0, "latency_ms": {"p50": 1.0}})
    return RunRecord(run_id="r1", created_at=results.now_iso(), trials=[trial], scenario={"name": "t"})


def test_round_trip(tmp_path):
    record = make_record()
    results.save_run(tmp_path, record)
    loaded = results.load_run(tmp_path)
    assert loaded == record
    assert loaded.format_version == results.FORMAT_VERSION


def test_arrays_round_trip(tmp_path):
    relative = trial_files.write_array(tmp_path, "trials/x/latency_ms.npy", np.array([1.5, 2.5]))
    assert trial_files.read_array(tmp_path, relative).tolist() == [1.5, 2.5]
    assert trial_files.read_array(tmp_path, "missing.npy").size == 0


def test_future_version_is_refused_with_advice(tmp_path):
    data = json.loads(make_record().model_dump_json())
    data["format_version"] = results.FORMAT_VERSION + 1
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="newer than this layerbench reads"):
        results.load_run(tmp_path)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"run_id": "x"}', '{"format_version": 1}'])
def test_corrupt_files_give_a_results_error(tmp_path, content):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(ResultsError, match="run.json"):
        results.load_run(tmp_path)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    results.atomic_write(tmp_path / "a.json", b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_resolve_latest_and_by_id(tmp_path):
    for run_id in ("20260101-000000-a-1", "20260102-000000-a-1"):
        record = make_record()
        record.run_id = run_id
        results.save_run(tmp_path / run_id, record)
    assert results.resolve_run("latest", tmp_path).name == "20260102-000000-a-1"
    assert results.resolve_run("20260101-000000-a-1", tmp_path).name == "20260101-000000-a-1"
    with pytest.raises(ResultsError, match="bench list"):
        results.resolve_run("nope", tmp_path)


def test_a_frozen_format_1_run_loads_with_the_layer_descriptions_v1_had():
    from pathlib import Path

    fixture = Path(__file__).parent.parent / "fixtures" / "small_run"
    assert json.loads((fixture / "run.json").read_text())["format_version"] == 1  # frozen: never rewritten
    record = results.load_run(fixture)
    assert record.format_version == results.FORMAT_VERSION
    layers = {(layer.setup, layer.variant): layer for layer in record.layers}
    assert set(layers) == {("bare", "default"), ("container", "bridge"), ("container", "host"), ("vm", "tcg")}
    assert layers[("bare", "default")].baseline and not layers[("vm", "tcg")].baseline
    assert "docker-proxy" in layers[("container", "bridge")].explanation
    assert "docker-proxy" not in layers[("container", "host")].explanation
    assert any("TCG" in caveat for caveat in layers[("vm", "tcg")].caveats)
    assert layers[("vm", "tcg")].roles["hypervisor"].contains_app is True


def test_the_memavailable_drop_is_taken_against_the_mean_of_before_and_after():
    from bench.runner.figures import bracket_available_drop

    mb = 1024 * 1024
    trial = TrialRecord(trial_id="t", setup="bare", variant="default", workload="density-x4", repeat=0, status="ok",
                        host={"mem_available_bytes": 900 * mb}, facts={"instances": 4})
    # The rest of the machine freed 20 MB meanwhile (before 1000, after 1020): the drift cancels.
    bracket_available_drop(trial, before=1000 * mb, after=1020 * mb)
    assert trial.memory_bytes.available_drop == 110 * mb
    assert trial.memory_bytes.available_drop_per_instance == 27.5 * mb


@pytest.mark.parametrize("record, model", [("ScenarioRecord", "Scenario"), ("WorkloadRecord", "Workload"),
                                           ("AppSpecRecord", "AppSpec"), ("SetupSpecRecord", "SetupSpec")])
def test_the_stored_scenario_has_the_scenarios_own_fields(record, model):
    """The run stores `Scenario.model_dump()`; the record that reads it back names the same fields,
    in the same order, so a stored scenario (and compare's view of it) keeps its shape."""
    import bench.records
    import bench.scenario

    assert list(getattr(bench.records, record).model_fields) == list(getattr(bench.scenario, model).model_fields)


def test_a_stored_scenario_reads_back_typed_and_writes_back_as_it_was(tmp_path):
    from bench.scenario import parse_scenario

    scenario = parse_scenario("name: s\nsetups: [bare, {container: {network: host}}]\nworkloads: [hello]\n"
                              "pinning: {app_cpus: [1], load_cpus: [0]}\ngate: {throughput_rps: '-10%'}\n")
    record = RunRecord(run_id="r", created_at="now", scenario=scenario.model_dump(mode="json"))
    save_run(tmp_path, record)
    loaded = load_run(tmp_path).scenario
    assert loaded.setups[1].options == {"network": "host"} and loaded.workloads[0].duration == 10.0
    assert loaded.pinning.app_cpus == [1] and loaded.gate == {"throughput_rps": "-10%"}
    assert loaded.stored() == scenario.model_dump(mode="json")


def test_a_network_path_reads_back_typed_and_is_stored_as_the_probe_gave_it(tmp_path):
    """Only the fields the probe wrote are written back (an interface step has no `note`, a trial
    without a path stays {}), so runs written before the block was typed keep their exact shape."""
    path = {"window_s": 0.2, "requests": 100, "quiet_s": 0.0,
            "path": [{"step": "interface", "name": "lo", "kind": "loopback", "netns": "host",
                      "window": {"rx_packets": 4.0, "tx_packets": 4.0, "rx_bytes": 9.0, "tx_bytes": 9.0},
                      "span": {"rx_packets": 5, "tx_packets": 5, "rx_bytes": 10, "tx_bytes": 10},
                      "packets_per_request": 0.08, "missing": None},
                     {"step": "process", "role": "proxy"}],
            "conntrack": {"entries_before": 7, "entries_after": 8, "entries_added": 1},
            "traced": {"by": "bpftrace", "endpoints": [["127.0.0.1", None]]},
            "dnat": {"port": 40001, "read": None, "packets": 0}, "later_field": 1}
    with_path = TrialRecord(trial_id="a", setup="s", variant="v", workload="w", repeat=0, status="ok",
                            network_path=path)
    without = TrialRecord(trial_id="b", setup="s", variant="v", workload="w", repeat=0, status="ok")
    save_run(tmp_path, RunRecord(run_id="r", created_at="now", trials=[with_path, without]))
    stored = json.loads((tmp_path / "run.json").read_text())["trials"]
    assert json.dumps(stored[0]["network_path"]) == json.dumps(path) and stored[1]["network_path"] == {}
    loaded = load_run(tmp_path).trials[0].network_path
    assert loaded.path[0].span.rx_packets == 5 and loaded.path[1].role == "proxy" and loaded.dnat.packets == 0


def test_a_ctrl_c_while_a_run_is_saved_takes_effect_after_the_write(tmp_path, monkeypatch):
    """pydantic calls a record's own serializers (Python) from compiled code and turns a
    KeyboardInterrupt raised in them into a PydanticSerializationError: a Ctrl-C there ended the run
    with "error", exit 1. It now waits for the save to end, and the file is whole."""
    import signal

    from bench import atomic

    real_write = atomic.atomic_write

    def interrupted_write(path, data):
        signal.raise_signal(signal.SIGINT)  # arrives while the record is being saved
        real_write(path, data)

    monkeypatch.setattr(results, "atomic_write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_run(tmp_path, make_record())
    assert load_run(tmp_path).run_id == make_record().run_id  # written whole before the interrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back


def test_interrupts_deferred_leaves_signals_alone_outside_the_main_thread():
    import threading

    from bench.atomic import interrupts_deferred

    seen = []

    def inside():
        with interrupts_deferred():
            seen.append(threading.current_thread() is not threading.main_thread())

    worker = threading.Thread(target=inside)
    worker.start()
    worker.join()
    assert seen == [True]
