"""Progress events on the wire: every kind survives the trip from a fleet host's worker to the
control host as an equal object, and a kind this version does not know is shown, not a crash."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from bench.event_wire import event_from_json, to_json
from bench.events import (EVENT_CLASSES, DiskEstimate, Event, HostChanged, HostLog, Planned, PlannedStart, PlannedWork,
                          Preparing, RepeatDecided, RunDone, RunStarted, SplitAnnounced, TrialDone, TrialFailed,
                          TrialStarted, Warned)
from bench.fleet.hostrun import HostRun
from bench.fleet.inventory import FleetHost
from bench.fleet.worker import Emitter
from bench.results import load_run
from tests.unit.test_plots import FIXTURE


def _examples() -> list[Event]:
    """One event of each kind, every field away from its default (the records: the fixture's)."""
    record = load_run(FIXTURE)
    trial = record.trials[0]
    common = {"done": 3, "total": 16, "host": "lab2"}
    starts = (PlannedStart("vm", "tcg", (PlannedWork("vm--hello--r0", "hello", "load", 4.0),
                                         PlannedWork("vm--startup--r0", "startup", "startup", 0.0)),
                           narration="a whole machine", app="nginx"),)
    return [
        RunStarted("run r1 -> /tmp/r1", run_dir=FIXTURE, **common),
        Preparing("preparing vm", **common),
        Warned("skipping vm: no KVM", **common),
        Planned("2 trials in 1 starts", starts=starts, at_most=True, budget_left_s=90.5, record=record, **common),
        TrialStarted("vm/hello/r0", trial="vm--hello--r0", setup="vm", variant="tcg", workload="hello", app="nginx",
                     narration="a whole machine", **common),
        DiskEstimate("vm/hello/r0: about 7 MiB", **common),
        TrialDone("vm / hello: 1,234 req/s", trial=trial.trial_id, record=trial, **common),
        TrialFailed("vm/hello/r0 failed: boom", trial=trial.trial_id,
                    record=trial.model_copy(update={"status": "failed", "error": "boom"}), **common),
        RepeatDecided("3 rounds in 40 s: stopped by precision", **common),
        RunDone("run r1 complete", run_dir=FIXTURE, **common),
        HostChanged("reached", **common),
        HostLog("a line on stderr", **common),
        SplitAnnounced("the app listens on 10.0.0.12", **common),
    ]


def test_one_example_of_every_kind_and_every_field_set():
    examples = _examples()
    assert {type(event) for event in examples} == set(EVENT_CLASSES.values())
    for event in examples:
        unset = [field.name for field in dataclasses.fields(event)
                 if field.default is not dataclasses.MISSING and getattr(event, field.name) == field.default]
        assert unset == [], (type(event).__name__, unset)


@pytest.mark.parametrize("event", _examples(), ids=lambda event: event.kind)
def test_every_kind_round_trips_through_json_as_an_equal_object(event):
    line = json.dumps(to_json(event), allow_nan=False)  # what the worker writes: strict JSON
    back = event_from_json(json.loads(line))
    assert type(back) is type(event) and back == event


def test_a_kind_this_version_does_not_know_shows_its_message_and_crashes_nothing():
    assert event_from_json({"kind": "from_the_future", "message": "a newer host says hi", "done": 1,
                            "shape": {"x": 1}}) == HostLog("a newer host says hi")
    assert event_from_json({"kind": "from_the_future"}) is None  # nothing to show
    assert event_from_json({"kind": "trial", "message": "bare/hello/r0"}) == HostLog("bare/hello/r0")  # fields missing
    assert event_from_json({"kind": "trial_done", "message": "m", "trial": 7}) == HostLog("m")  # an ill-typed field
    assert event_from_json({"kind": "done", "message": "m", "done": True, "run_dir": "/r"}) == HostLog("m")  # bool
    bad_record = {"kind": "trial_done", "message": "m", "trial": "t", "record": {"status": 5}}
    assert event_from_json(bad_record) == HostLog("m")
    assert event_from_json(["not", "an", "object"]) is None
    assert event_from_json({"kind": "skip", "message": "m", "from_the_future": 1}) == Warned("m")  # a field more


class _Fleet:
    def __init__(self):
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def test_the_control_host_gets_what_a_worker_sent_with_the_hosts_name():
    """The pair in use: the worker's Emitter writes the line, the control host's HostRun reads it."""
    out = io.StringIO()
    emitter = Emitter(out)
    for event in _examples():
        emitter.event(dataclasses.replace(event, host=None))
    fleet = _Fleet()
    run = HostRun(fleet, FleetHost("lab1", "bench@10.0.0.11"))
    for line in out.getvalue().splitlines():
        run.handle(line)
    run.handle(json.dumps({"kind": "event", "event": {"kind": "from_the_future", "message": "new"}}))
    expected = [dataclasses.replace(event, host="lab1") for event in _examples() if not isinstance(event, Planned)]
    for index, event in enumerate(expected):  # a trial's record stays in the host's run.json
        if isinstance(event, (TrialDone, TrialFailed)):
            expected[index] = dataclasses.replace(event, record=None)
    assert fleet.events == [*expected, HostLog("new", host="lab1")]
