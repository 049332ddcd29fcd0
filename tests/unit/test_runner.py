"""The runner, driven by a setup that lives in the test process (tests/fake_setup.py), as a
scheduler is tested on a fake executor: order, starts, resume, failures and interrupts."""

from __future__ import annotations

import json

import pytest

from bench.load.builtin import LoadResult
from bench.results import load_run
from bench.runner import Runner
from bench.scenario import parse_scenario
from tests.fake_setup import InProcessSetup, registered

SCENARIO = """
name: fake
setups: [{inproc: {flavour: a}}, {inproc: {flavour: b}}]
workloads:
  - {name: hello, endpoint: hello, duration: 0.3, warmup: 0.1, connections: 2}
  - {name: cpu, endpoint: cpu, param: 100, duration: 0.3, warmup: 0.1, connections: 2}
repeat: 2
"""


@pytest.fixture
def fake():
    with registered() as cls:
        cls.launches = 0
        yield cls


def _scenario(text: str = SCENARIO, **fields):
    scenario = parse_scenario(text)
    return scenario.model_copy(update=fields) if fields else scenario


def test_interleaves_repeats_shares_a_start_per_repeat_and_describes_layers(fake, tmp_path):
    run_dir = Runner(_scenario(), tmp_path).run()
    record = load_run(run_dir)
    assert record.status == "complete"
    setups = [key.split("/")[0] for key in record.order]
    rounds = [int(key.split("/r")[1]) for key in record.order]
    assert rounds == [0] * 4 + [1] * 4  # interleaved: every setup once per round
    assert sorted(setups[:4]) == sorted(setups[4:]) == ["inproc[flavour=a]"] * 2 + ["inproc[flavour=b]"] * 2
    assert all(setups[index] == setups[index + 1] for index in (0, 2, 4, 6))  # one start serves both workloads
    assert setups[:4] != setups[4:]  # each round's order is shuffled (seeded): here the two differ
    assert fake.launches == 4  # one start per setup and repeat, both workloads on it
    assert all(t.status == "ok" and t.load.requests > 0 for t in record.trials)
    assert {(layer.setup, layer.variant) for layer in record.layers} == {("inproc", "a"), ("inproc", "b")}
    layer = record.layers[0]
    assert layer.caveats == ["Test-only layer: its figures share a process with the load generator."]
    assert layer.roles["thread"].label == "app thread (in the test process)"
    assert all(set(t.roles) == {"thread"} for t in record.trials)
    assert not (run_dir / "work").exists()


def test_resume_runs_only_what_is_missing(fake, tmp_path):
    run_dir = Runner(_scenario(), tmp_path).run()
    record = load_run(run_dir)
    kept = [t for t in record.trials if t.repeat == 0]
    record.trials, record.status = kept, "incomplete"
    fake.launches = 0
    Runner(_scenario(), tmp_path, resume=record).run()
    again = load_run(run_dir)
    assert fake.launches == 2  # only repeat 1 of each flavour
    assert sorted(t.trial_id for t in again.trials) == sorted(t.trial_id for t in load_run(run_dir).trials)
    assert len(again.trials) == 8 and again.status == "complete"


def test_a_failing_load_fails_its_trial_and_the_run_goes_on(fake, tmp_path):
    calls = []

    def flaky(port, workload) -> LoadResult:
        calls.append(workload.name)
        if len(calls) == 2:
            raise RuntimeError("the generator broke")
        from bench.runner import generator_for
        from bench.setups.base import Pinning

        return generator_for(Pinning.default())(port, workload)

    run_dir = Runner(_scenario(repeat=1), tmp_path, load=flaky).run()
    record = load_run(run_dir)
    failed = [t for t in record.trials if t.status == "failed"]
    assert [t.error for t in failed] == ["the generator broke"]
    assert len(record.trials) == 4 and record.status == "complete"


def test_an_interrupt_stops_the_setup_and_leaves_an_incomplete_run(fake, tmp_path):
    servers = []

    def interrupted(port, workload) -> LoadResult:
        servers.append(port)
        raise KeyboardInterrupt

    runner = Runner(_scenario(), tmp_path, load=interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    data = json.loads((runner.run_dir / "run.json").read_text())
    assert data["status"] == "incomplete"
    import socket

    with socket.socket() as probe:  # the in-process server was shut down on the way out
        assert probe.connect_ex(("127.0.0.1", servers[0])) != 0


def test_a_setup_that_cannot_run_is_skipped_with_its_reason(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not here: install nothing"))
    run_dir = Runner(_scenario(repeat=1), tmp_path).run()
    record = load_run(run_dir)
    assert record.trials == [] and record.skipped[0].reason == "not here: install nothing"
