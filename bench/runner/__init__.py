"""Run a scenario: prepare each setup, then its starts and trials in the planned order, storing
every trial as it ends. The runner never prints: it reports through a `progress` callback, and
the run folder is rewritten (atomically) after every trial, so a crash or Ctrl-C keeps every
trial already measured.

Jobs are split: `plan` (order, seed, repeat: auto), `measure` (one trial on a running setup),
`persist` (files and run.json), and this module, which ties them together.
"""

from __future__ import annotations

import contextlib
import sys
import time
from functools import partial
from pathlib import Path

from bench import machine
from bench.errors import SetupError
from bench.events import (DiskEstimate, Planned, PlannedStart, PlannedWork, Preparing, ProgressFn, RunDone,
                          RunInterrupted, RunStarted, TrialDone, TrialFailed, TrialStarted, Warned, no_progress)
from bench.metrics.window import mem_available_now
from bench.netutil import LOOPBACK
from bench.records import RunnerHost, Skipped, Split
from bench.results import LayerRecord, RunRecord, load_run, new_run_id, now_iso, runner_identity, save_run
from bench.runlock import RunLock, refuse_if_live
from bench.runner.figures import bracket_available_drop, disk_estimate
from bench.runner.measure import LoadFn, Measurement, alive, load_for, measure_trial, new_record
from bench.runner.generator import generator_for, load_spec
from bench.runner.persist import append_trial, store_measurement
from bench.runner.plan import PlannedTrial, plan, resolve_pinning
from bench.runner.rounds import Rounds
from bench.runner.process import pinned, sigterm_as_interrupt
from bench.scenario import Scenario, SetupSpec
from bench.setups import registry
from bench.setups.base import Instance, Setup
from bench.setups.procutil import signals_deferred
from bench.vocabulary import trial_line

__all__ = ["Runner", "RunInterrupted", "check_apps", "generator_for", "load_spec", "resume_run", "run_scenario"]

def _side_by_side(copies: list[Instance]) -> Instance:
    """N running copies seen as one: every process of each, phases and facts of the first."""
    return Instance(port=copies[0].port, processes=lambda: [rp for copy in copies for rp in copy.processes()],
                    phases=dict(copies[0].phases), facts={**copies[0].facts, "instances": len(copies)},
                    handle=copies[0].handle, address=copies[0].address, ready_path=copies[0].ready_path,
                    stats_path=copies[0].stats_path)


def prepare_apps(apps: list) -> None:
    """Prepare every app (bench.apps.base.App) before anything is stored: SetupError when one cannot
    run anywhere here (an image not present locally, one without an entrypoint). An app whose
    software this machine lacks (nginx not installed) is not refused: each setup skips it, saying why."""
    for app in apps:
        if type(app).check() is not None:
            continue
        try:
            app.prepare()
        except OSError as error:
            raise SetupError(f"{app.name}: {_reason(error)}") from None


def check_apps(scenario: Scenario) -> None:
    """SetupError, before a run folder exists, when an app the scenario names cannot be prepared here."""
    prepare_apps([spec.build() for spec in scenario.app_specs])


def _reason(error: BaseException) -> str:
    # An OSError's text alone can be cryptic ("5311 requested and 4080 written" on a full disk).
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error}"
    return str(error) or type(error).__name__


class Runner:
    """Holds the state of one run; `run()` executes the plan and returns the run folder.

    A split run (bench.fleet.split) passes the load host's generator as `load`, the one address
    the app may listen on as `address`, and what to record about it as `split`."""

    def __init__(self, scenario: Scenario, results_dir: Path, progress: ProgressFn = no_progress,
                 command_line: list[str] | None = None, sampler_hz: float = 10.0, resume: RunRecord | None = None,
                 load: LoadFn | None = None, address: str = LOOPBACK, split: dict | None = None,
                 trace_hops: bool = False):
        self.scenario = scenario
        self.progress = progress
        self.sampler_hz = sampler_hz
        self.trace_hops = trace_hops  # eBPF per-hop counts beside the counters, where it runs
        self.pinning = resolve_pinning(scenario)
        self.load = load or generator_for(self.pinning)
        self.address = address
        self.apps = [spec.build() for spec in scenario.app_specs]  # bench.apps.base.App, in scenario order
        self.several_apps = len(self.apps) > 1
        self.setups_by_key: dict[tuple[str, str], Setup] = {}  # (app, setup spec key) -> prepared setup
        self.variants: dict[tuple[str, str], str] = {}
        self.record = resume if resume is not None else self._new_record(command_line)
        if resume is not None:  # finish a run: same id, folder, scenario and seed; failed trials again
            self.record.trials = resume.ok_trials()
            self.record.skipped = []
            self.record.status = "running"
            self.record.runner_pid, self.record.runner_started = runner_identity()
            self.record.runner_host = RunnerHost(**machine.this_host())
        if split:
            self.record.split = Split.model_validate(split)
        self.done = {trial.trial_id for trial in self.record.trials}
        self.run_id = self.record.run_id
        self.run_dir = Path(results_dir) / self.run_id
        self.workdir = self.run_dir / "work"
        self.resuming = resume is not None

    def _new_record(self, command_line: list[str] | None) -> RunRecord:
        pid, started = runner_identity()
        return RunRecord(run_id=new_run_id(self.scenario.name), created_at=now_iso(),
                         command_line=command_line or sys.argv, scenario=self.scenario.model_dump(mode="json"),
                         machine=machine.describe(), pinning=self.pinning.as_dict() or None, seed=self.scenario.seed,
                         runner_pid=pid, runner_started=started, runner_host=machine.this_host())

    # ---- the whole run ------------------------------------------------------------------

    def run(self) -> Path:
        """Run every planned trial not yet recorded; the run folder. ResultsError when another
        runner is writing this run (one writer per run: see bench.runlock); SetupError, with nothing
        stored, when an app cannot be prepared here (a user's image that is not present)."""
        prepare_apps(self.apps)
        # A resumed run's folder exists even when no trial finished ok before the interruption.
        self.run_dir.mkdir(parents=True, exist_ok=self.resuming)
        with RunLock(self.run_dir):
            return self._run_locked()

    def _run_locked(self) -> Path:
        save_run(self.run_dir, self.record)
        self.began = time.monotonic()
        self.progress(RunStarted(f"run {self.run_id} -> {self.run_dir}", run_dir=self.run_dir))
        try:
            with pinned(self.pinning.load_cpus), sigterm_as_interrupt():
                pairs = self._prepare_setups()
                Rounds(self.scenario, self.record, self.run_dir, self.progress, self.began).run(
                    pairs, lambda cap, at_most: self._announce(plan(self.scenario, pairs, cap), at_most), self._run_start)
            self.record.status = "complete"
        except BaseException:
            self.record.status = "incomplete"
            raise
        finally:
            self._release_setups()
            self.record.finished_at = now_iso()
            save_run(self.run_dir, self.record)
            with contextlib.suppress(OSError):
                self.workdir.rmdir()
        self.progress(RunDone(f"run {self.run_id} complete", run_dir=self.run_dir))
        return self.run_dir

    def _release_setups(self) -> None:
        """Stop what setups started for the run (a private engine), even on Ctrl-C; a failure is said."""
        with signals_deferred():
            for name, setup in self.setups_by_key.items():
                try:
                    setup.release()
                except Exception as error:
                    self.progress(Warned(f"warning: could not release {name[1]}: {_reason(error)}; run `bench clean`"))

    def _announce(self, starts: list[list[PlannedTrial]], at_most: bool) -> None:
        """Tell the renderer every start and trial still to run (a countdown needs their durations)."""
        planned = []
        for group in starts:
            todo = tuple(PlannedWork(trial.trial_id, trial.workload_label, trial.workload.kind,
                                     0.0 if trial.workload.kind == "startup"
                                     else trial.workload.warmup + trial.workload.duration)
                         for trial in group if trial.trial_id not in self.done)
            if todo:
                trial = group[0]
                planned.append(PlannedStart(trial.spec.setup, self.variants[trial.setup_key], todo,
                                            self.setups_by_key[trial.setup_key].narration,
                                            trial.app if self.several_apps else None))
        snapshot = self.record.model_copy(deep=True)  # the renderer's own copy: the run goes on mutating ours
        self.progress(Planned(f"{sum(len(start.trials) for start in planned)} trials in {len(planned)} starts",
                              starts=tuple(planned), at_most=at_most, record=snapshot,
                              budget_left_s=None if self.scenario.budget is None
                              else self.scenario.budget - (time.monotonic() - self.began)))

    def _prepare_setups(self) -> list[tuple]:
        """Check and prepare every app in every setup of the scenario; the (app, spec) pairs that
        can run, each described in the run."""
        ready = []
        for app in self.apps:
            app_reason = self._app_reason(app)
            for spec in self.scenario.setups:
                name = f"{app.name} in {spec.key}" if self.several_apps else spec.key
                setup, reason = (None, app_reason) if app_reason else self._prepared(spec, app)
                if reason is not None:
                    self.record.skipped.append(Skipped(setup=spec.setup, variant=spec.key, app=app.name, reason=reason))
                    save_run(self.run_dir, self.record)
                    self.progress(Warned(f"skipping {name}: {reason}"))
                    continue
                key = (app.name, spec.key)
                self.setups_by_key[key], self.variants[key] = setup, setup.variant()
                described = {(layer.setup, layer.variant, layer.app) for layer in self.record.layers}
                if (spec.setup, self.variants[key], app.name) not in described:
                    self.record.layers.append(LayerRecord.model_validate(setup.describe()))
                ready.append((app, spec))
        save_run(self.run_dir, self.record)
        return ready

    def _app_reason(self, app) -> str | None:
        """Why an app cannot run here (not installed, an image not present), or None once it is prepared."""
        reason = type(app).check()
        if reason is not None:
            return reason
        try:
            app.prepare(lambda message: self.progress(Preparing(f"{app.name}: {message}")))
        except (SetupError, OSError) as error:
            return f"prepare failed: {error}"
        return None

    def _prepared(self, spec: SetupSpec, app) -> tuple[Setup | None, str | None]:
        cls = registry.get(spec.setup)
        reason = cls.check()
        if reason is not None:
            return None, reason
        name = f"{app.name} in {spec.key}" if self.several_apps else spec.key
        setup = cls(spec.options, self.pinning, self.run_id, self.workdir,
                    progress=lambda message: self.progress(Preparing(f"{name}: {message}")),
                    address=self.address, app=app)
        try:
            self.progress(Preparing(f"preparing {name}"))
            setup.prepare()
        except (SetupError, OSError) as error:
            return None, f"prepare failed: {error}"
        return setup, None

    def _run_start(self, group: list[PlannedTrial], total: int) -> None:
        """Launch once (or `copies` times, side by side), run the group's trials, always stop."""
        setup = self.setups_by_key[group[0].setup_key]
        group = [trial for trial in group if trial.trial_id not in self.done]  # resume: only what is missing
        if not group:
            return
        # Density: what the machine can still hand out before the copies start, to weigh what they take.
        available_before = mem_available_now() if group[0].workload.kind == "density" else None
        try:
            with contextlib.ExitStack() as stack:
                copies = [stack.enter_context(setup.running()) for _ in range(group[0].copies)]
                instance = copies[0] if len(copies) == 1 else _side_by_side(copies)
                self._run_group(setup, instance, group, total)
        except (SetupError, OSError) as error:
            # The launch failed (or the stop did): every trial of this start not yet recorded fails.
            recorded = {trial.trial_id for trial in self.record.trials}
            for trial in group:
                if trial.trial_id not in recorded:
                    self._fail(trial, _reason(error))
        if available_before is not None:
            self._bracket_memory(group, available_before)

    def _bracket_memory(self, group: list[PlannedTrial], before: float) -> None:
        """Density: read MemAvailable again once the copies are gone and take the drop against the
        mean of before and after, so memory the rest of the machine took or freed meanwhile (a
        steady drift) cancels out."""
        after = mem_available_now()
        ids = {trial.trial_id for trial in group}
        for record in self.record.trials:
            if record.trial_id in ids and record.status == "ok":
                bracket_available_drop(record, before, after)
        save_run(self.run_dir, self.record)

    def _run_group(self, setup: Setup, instance: Instance, group: list[PlannedTrial], total: int) -> None:
        for index, trial in enumerate(group):
            self.progress(TrialStarted(trial.key, len(self.record.trials) + 1, total, trial=trial.trial_id,
                                       setup=trial.spec.setup, variant=self.variants[trial.setup_key],
                                       workload=trial.workload.name, app=trial.app, narration=setup.narration))
            self._say_disk_cost(trial)
            self._run_trial(setup, instance, trial, fresh=index == 0)
            if index + 1 < len(group) and not alive(instance):
                for rest in group[index + 1:]:
                    self._fail(rest, "the setup stopped answering during an earlier trial")
                break

    # ---- one trial ---------------------------------------------------------------------

    def _say_disk_cost(self, trial: PlannedTrial) -> None:
        rates = [(t.setup, t.variant, t.workload, t.load.throughput_rps if t.load else None)
                 for t in self.record.ok_trials()]
        mine = (trial.spec.setup, self.variants[trial.setup_key], trial.workload_label)
        estimate = disk_estimate(trial.workload, [rps for *key, rps in rates if tuple(key) == mine and rps],
                                 [rps for *_, rps in rates if rps])
        if estimate is not None:
            self.progress(DiskEstimate(f"{trial.key}: {estimate}"))

    def _run_trial(self, setup: Setup, instance: Instance, trial: PlannedTrial, fresh: bool) -> None:
        try:
            measurement: Measurement = measure_trial(instance, trial, self.variants[trial.setup_key], fresh,
                                                     load_for(instance, self.load, partial(generator_for, self.pinning),
                                                              bool(self.record.split)),
                                                     self.sampler_hz, fixed=setup.fixed_processes,
                                                     trace_hops=self.trace_hops,
                                                     speed_cpus=self.pinning.app_cpus if self.scenario.calibrate
                                                     else None)
        except (SetupError, OSError, RuntimeError, ValueError) as error:
            self._fail(trial, _reason(error))
            return
        record = store_measurement(self.run_dir, measurement)
        append_trial(self.run_dir, self.record, record, trial.key)
        if record.status == "failed":  # measured, but judged failed (no request served, the setup died)
            self.progress(TrialFailed(f"{trial.key} failed: {record.error}", trial=record.trial_id, record=record))
            return
        self.progress(TrialDone(trial_line(record, show_app=self.several_apps), trial=record.trial_id, record=record))

    def _fail(self, trial: PlannedTrial, reason: str) -> None:
        record = new_record(trial, self.variants.get(trial.setup_key, "default"), status="failed", error=reason)
        # Say it before saving: on a full disk the save fails too, and the user must still see why.
        self.progress(TrialFailed(f"{trial.key} failed: {reason}", trial=record.trial_id, record=record))
        append_trial(self.run_dir, self.record, record, trial.key)


def run_scenario(scenario: Scenario, results_dir: Path, progress: ProgressFn = no_progress,
                 command_line: list[str] | None = None, trace_hops: bool = False) -> Path:
    """Run every trial of `scenario`; returns the run folder (written after every trial). `trace_hops`:
    count the app's own packets per hop with eBPF too, where it runs (bench.metrics.hoptrace)."""
    return Runner(scenario, results_dir, progress, command_line, trace_hops=trace_hops).run()


def resume_run(run_dir: Path, progress: ProgressFn = no_progress) -> Path:
    """Finish an incomplete run with its own settings: the trials not recorded as ok are run."""
    record = load_run(run_dir)
    refuse_if_live(Path(run_dir), record.runner_pid)
    try:
        scenario = Scenario.model_validate(record.scenario.stored())
    except ValueError as error:
        raise SetupError(f"{run_dir}: its scenario no longer validates ({error}); start a new run") from None
    if record.machine.hostname != machine.describe()["hostname"]:
        progress(Warned("warning: resuming on another machine than the run started on"))
    return Runner(scenario, Path(run_dir).parent, progress, resume=record).run()
