"""The live view, driven through a run: real TrialRecords (the frozen fixture's, and a run of the
test-only setup) arrive as events; what the panel shows is read back as text. The countdown is
driven by a fake clock, so no test depends on how fast this machine is."""

from __future__ import annotations

import io
import itertools
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench.cli import app
from bench.countdown import START_PRIOR_S, Countdown, clock
from bench.events import (Event, Planned, PlannedStart, PlannedWork, RunDone, RunStarted, TrialDone, TrialFailed,
                          TrialStarted)
from bench.figures import ratio_text
from bench.outputs.live import LiveView, bar, suits
from bench.model import Run
from bench.results import load_run
from bench.runner import Runner
from bench.scenario import parse_scenario
from tests.fake_setup import registered
from tests.unit.test_plots import FIXTURE

WINDOW_S = 4.0  # the fixture's workloads: warm-up 1 s + 3 s measured


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _starts(record) -> tuple[list[PlannedStart], list[list]]:
    """The fixture's trials as the runner would have planned them: one start per layer and repeat."""
    groups: dict[tuple, list] = {}
    for trial in record.trials:
        groups.setdefault((trial.repeat, trial.setup, trial.variant), []).append(trial)
    starts = [PlannedStart(setup, variant, tuple(PlannedWork(t.trial_id, t.workload, t.kind, WINDOW_S) for t in group),
                           narration=f"what {setup} adds")
              for (_, setup, variant), group in groups.items()]
    return starts, list(groups.values())


def _text(view: LiveView) -> str:
    console = Console(record=True, width=100, force_terminal=False)
    console.print(view.render())
    return console.export_text()


def _feed(view: LiveView, fake: FakeClock, group: list) -> None:
    for trial in group:
        fake.t += 3.0  # the launch, or the gap after the previous trial
        view(TrialStarted(trial.trial_id, trial=trial.trial_id, setup=trial.setup, variant=trial.variant,
                          workload=trial.workload, narration=f"what {trial.setup} adds"))
        fake.t += WINDOW_S + 0.5
        view(TrialDone(f"{trial.trial_id} measured", trial=trial.trial_id, record=trial))


def test_the_panel_draws_each_layer_as_ratios_of_the_model_as_trials_arrive():
    record = load_run(FIXTURE)
    starts, groups = _starts(record)
    fake = FakeClock()
    view = LiveView(Console(file=io.StringIO(), width=100), narrate=True, now=fake)
    view(RunStarted("run", run_dir=FIXTURE))
    view(Planned("", starts=tuple(starts), at_most=False, record=record.model_copy(update={"trials": []})))
    assert "(start-ups guessed)" in _text(view)
    for group in groups[:6]:  # repeat 1 of every layer, then bare and container (bridge) again
        _feed(view, fake, group)

    shown = _text(view)
    partial = Run(record.model_copy(update={"trials": [t for group in groups[:6] for t in group]}), FIXTURE)
    vm = next(row for row in partial.overhead if row.label == "vm (tcg)" and row.metric == "throughput_rps"
              and row.workload == "hello")
    assert re.search(rf"vm \(tcg\)\s+\S+\s+{vm.ratio.median:.2f}×", shown)  # the model's ratio, not a regrouping
    assert "12/16 trials" in shown and "about" in shown and "left" in shown
    assert "starting container (host)…" in shown and "what container adds" in shown  # the launch to come
    assert "throughput" in shown and "p99 latency" in shown and "CPU per request" in shown

    for group in groups[6:]:
        _feed(view, fake, group)
    view(RunDone("run complete", run_dir=FIXTURE))
    final = _text(view)
    whole = Run(record, FIXTURE)
    for row in whole.overhead:
        if row.metric == "cpu_us_per_request" and row.workload == "cpu":
            text = ratio_text(row.ratio.median)
            assert re.search(rf"{re.escape(row.label)}.*{re.escape(text)}", final), (row.label, text)
    assert "16/16 trials" in final and "done: 16 trials in" in final and "left" not in final


def test_a_cell_whose_trials_failed_says_so_instead_of_drawing_a_bar():
    record = load_run(FIXTURE)
    starts, groups = _starts(record)
    view = LiveView(Console(file=io.StringIO(), width=100), now=FakeClock())
    view(Planned("", starts=tuple(starts), record=record.model_copy(update={"trials": []})))
    _feed(view, FakeClock(), groups[0])
    failed = groups[3][0].model_copy(update={"status": "failed", "error": "boom", "load": {}})
    view(TrialFailed("vm failed: boom", trial=failed.trial_id, record=failed))
    shown = _text(view)
    assert re.search(r"vm \(tcg\)\s+failed", shown) and "vm failed: boom" in shown
    assert re.search(r"container \(host\)\s+waiting…", shown)


def test_the_countdown_learns_launches_and_what_trials_take_beyond_their_window():
    fake = FakeClock()
    starts = [PlannedStart(layer, "default", tuple(PlannedWork(f"{layer}-{n}", "hello", "load", 2.0) for n in (1, 2)))
              for layer in ("a", "b")]
    countdown = Countdown(starts, now=fake)
    assert countdown.remaining_s() == pytest.approx(2 * START_PRIOR_S + 4 * 2.0) and countdown.guessing
    fake.t += 5.0  # launch of a took 5 s
    countdown.trial_begins("a-1")
    assert countdown.launch_estimate(("a", "default")) == 5.0 and countdown.launch_estimate(("b", "default")) == 5.0
    fake.t += 3.0  # 1 s beyond its 2 s window
    countdown.trial_ends("a-1")
    assert countdown.extra_estimate == pytest.approx(1.0)
    assert countdown.remaining_s() == pytest.approx(3.0 + 5.0 + 2 * 3.0)
    fake.t += 1.0  # a-2 under way for 1 s: its 3 s shrink to 2
    countdown.trial_begins("a-2")
    assert countdown.remaining_s() == pytest.approx(3.0 + 5.0 + 2 * 3.0 - 1.0)
    fake.t += 2.0
    countdown.trial_ends("a-2")
    assert countdown.next_start() is starts[1]
    fake.t += 60.0  # a launch far slower than estimated: the estimate waits, it never goes negative
    assert countdown.remaining_s() == pytest.approx(2 * countdown.extra_estimate + 4.0)
    assert clock(3725) == "1:02:05" and clock(65) == "1:05"


def test_bars_are_eighths_of_a_character_and_never_vanish():
    assert bar(1.0, 4) == "████" and bar(0.5, 4) == "██  " and bar(0.001, 4) == "▏   " and bar(0.0, 4) == "    "


def test_the_live_view_follows_a_real_run_of_the_test_only_setup(tmp_path):
    ticks = itertools.count(0.0, 0.25)
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with registered():
        scenario = parse_scenario("name: live\nsetups: [bare, {inproc: {flavour: x}}]\nworkloads:\n"
                                  "  - {name: hello, endpoint: hello, duration: 0.3, warmup: 0.1, connections: 2}\n"
                                  "repeat: 2\n")
        view = LiveView(console, narrate=True, now=lambda: next(ticks))
        with view:
            run_dir = Runner(scenario, tmp_path, view).run()
    shown = _text(view)
    assert "inproc (x)" in shown and "4/4 trials" in shown and "done: 4 trials in" in shown
    ratio = next(row for row in Run.load(run_dir).overhead if row.metric == "throughput_rps").ratio.median
    assert ratio_text(ratio) in shown


@pytest.mark.parametrize("env, terminal, expected", [
    ({}, True, True), ({}, False, False), ({"NO_COLOR": "1"}, True, False), ({"TERM": "dumb"}, True, False),
    ({"CI": "true"}, True, False)])
def test_the_live_view_only_where_a_terminal_takes_it(monkeypatch, env, terminal, expected):
    for name in ("NO_COLOR", "CI", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    console = Console(file=io.StringIO(), force_terminal=terminal)
    assert suits(console) is expected


def test_without_a_terminal_a_run_prints_todays_plain_lines(tmp_path):
    with registered():
        outcome = CliRunner().invoke(app, ["run", "--setups", "bare,inproc", "--workloads", "hello", "--duration",
                                           "0.3", "--warmup", "0.1", "--repeat", "1", "--connections", "2",
                                           "--out", str(tmp_path), "--no-report"])
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    assert any(re.match(r"\s+bare / hello: [\d,]+ req/s, p99 [\d.]+ ms", line) for line in lines)
    assert any(re.match(r"\s+inproc \(plain\) / hello: [\d,]+ req/s", line) for line in lines)
    assert "╭" not in outcome.output and "trials  elapsed" not in outcome.output  # no panel, no countdown


def test_each_layer_has_its_own_hue_and_none_is_too_dark_for_a_dark_terminal():
    import colorsys

    from bench.model import Run
    from bench.outputs.live import MIN_LIGHTNESS, hue

    run = Run.load(FIXTURE)
    layers = run.prepared_layers
    hues = [hue(run, layer) for layer in layers]
    assert len(set(hues)) == len(layers)
    for value in hues:
        rgb = (int(value[i:i + 2], 16) / 255 for i in (1, 3, 5))
        assert colorsys.rgb_to_hls(*rgb)[1] >= MIN_LIGHTNESS - 0.01


def test_the_plan_of_a_resumed_run_holds_only_the_trials_still_to_run(tmp_path):
    with registered():
        scenario = parse_scenario("name: resume\nsetups: [bare, {inproc: {flavour: y}}]\nworkloads:\n"
                                  "  - {name: hello, endpoint: hello, duration: 0.3, warmup: 0.1, connections: 2}\n"
                                  "repeat: 2\n")
        run_dir = Runner(scenario, tmp_path).run()
        record = load_run(run_dir)
        record.trials, record.status = [t for t in record.trials if t.repeat == 0], "incomplete"
        events: list[Event] = []
        Runner(scenario, tmp_path, events.append, resume=record).run()
    [planned] = [event for event in events if isinstance(event, Planned)]
    trials = [work.trial for start in planned.starts for work in start.trials]
    assert sorted(trials) == sorted(t.trial_id for t in load_run(run_dir).trials if t.repeat == 1)
    assert all(work.seconds == pytest.approx(0.4) for start in planned.starts for work in start.trials)
    assert len(planned.record.trials) == 2  # the run so far: what the bars start from
    assert [start.narration for start in planned.starts][1].startswith("a test-only layer")
