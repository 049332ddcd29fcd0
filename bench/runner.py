"""Run a scenario: trials in interleaved order, warm-up, repeats, sampling, and cleanup.

The runner never prints. It reports through a `progress` callback and writes the run folder
after every trial (atomically), so a crash or Ctrl-C keeps every trial already measured.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from bench import machine, setups
from bench.load.builtin import LoadResult, LoadSpec, run_load
from bench.metrics.sampler import HOST_COLUMNS, PROCESS_COLUMNS, Sampler
from bench.metrics.summary import summarize_host, summarize_processes
from bench.results import (RunRecord, TrialRecord, load_run, new_run_id, now_iso, save_run, write_array,
                           write_csv)
from bench.scenario import Scenario, SetupSpec, Workload
from bench.setups.base import ROLES, Instance, Pinning, Setup, SetupError
from bench.stats import median_ci, percentiles

SETUP_ROLES = ROLES  # the roles that count as the setup (the load generator does not)


@dataclass(frozen=True)
class Event:
    """A progress report: `kind` is one of start, skip, prepare, trial, trial_done, trial_failed, done."""

    kind: str
    message: str
    done: int = 0
    total: int = 0
    data: dict = field(default_factory=dict)


ProgressFn = Callable[[Event], None]


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread so cleanup runs as for Ctrl-C.

    A KeyboardInterrupt: raised inside an asyncio callback of the load generator, any other
    exception (BaseException included) is caught and logged by the event loop, and the run went on.
    """


@dataclass
class _Trial:
    """One planned trial: which start it belongs to, and what it runs."""

    key: str
    spec: SetupSpec
    workload: Workload
    repeat: int
    copies: int = 1  # density: how many instances run side by side


@contextlib.contextmanager
def _pinned(cpus: tuple[int, ...]) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum, frame):
        raise RunInterrupted("terminated (SIGTERM)")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve_pinning(scenario: Scenario) -> Pinning:
    """The scenario's pinning, or the default (app on the last CPU, load on the others)."""
    if scenario.pinning == "auto":
        return Pinning.default()
    allowed = os.sched_getaffinity(0)
    spec = scenario.pinning
    bad = sorted(set(spec.app_cpus + spec.load_cpus) - allowed)
    if bad:
        raise SetupError(f"pinning names CPUs {bad} that this process may not use (allowed: {sorted(allowed)})")
    return Pinning(app_cpus=tuple(spec.app_cpus), load_cpus=tuple(spec.load_cpus))


def _starts_for(scenario: Scenario, spec: SetupSpec, repeat: int) -> list[list[_Trial]]:
    """The starts one repeat of one setup needs; each inner list shares one launch."""
    group: list[list[_Trial]] = []
    shared = []
    for workload in scenario.workloads:
        if workload.kind == "startup":  # a cold start is the measurement: always a launch of its own
            group.append([_Trial(f"{spec.key}/{workload.name}/r{repeat}", spec, workload, repeat)])
        elif workload.kind == "density":  # N copies side by side: a launch of N per count
            group += [[_Trial(f"{spec.key}/{workload.name}-x{count}/r{repeat}", spec, workload, repeat, count)]
                      for count in workload.instances]
        else:
            shared.append(_Trial(f"{spec.key}/{workload.name}/r{repeat}", spec, workload, repeat))
    if scenario.start == "per_trial":
        group += [[trial] for trial in shared]
    elif shared:
        group.append(shared)
    return group


def plan(scenario: Scenario, specs: list[SetupSpec], repeats: int, first_repeat: int = 0) -> list[list[_Trial]]:
    """Every start of `repeats` repeats, in the scenario's order.

    Interleaved: repeat 1 of every setup, then repeat 2 of every setup, ... so drift in the
    machine hits all setups alike. Sequential: all repeats of one setup, then the next.
    """
    rounds = range(first_repeat, first_repeat + repeats)
    if scenario.order == "interleaved":
        return [start for repeat in rounds for spec in specs for start in _starts_for(scenario, spec, repeat)]
    return [start for spec in specs for repeat in rounds for start in _starts_for(scenario, spec, repeat)]


def converged(record: RunRecord, target: float, seed: int) -> tuple[bool, str]:
    """Whether every cell's interval is narrower than `target` of its median, and the widest one."""
    cells: dict[tuple, list[float]] = {}
    for trial in record.ok_trials():
        if trial.kind == "load":
            value = trial.load.get("throughput_rps")
        elif trial.kind == "startup":
            value = trial.startup_s
        else:  # idle and density: the footprint
            value = trial.memory_bytes.get("rss")
        cells.setdefault((trial.setup, trial.variant, trial.workload), []).append(value)
    widest, widest_key = 0.0, None
    for key, values in cells.items():
        width = median_ci(values, seed).relative_width
        if width > widest:
            widest, widest_key = width, key
    label = f"{widest_key[0]} [{widest_key[1]}] {widest_key[2]}" if widest_key else "none"
    return widest <= target, f"widest interval {widest:.1%} of its median ({label})"


def get_stats(port: int, timeout_s: float = 5.0) -> dict:
    """The app's /stats (its view from inside the layer); {} if it does not answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", "/stats")
        response = connection.getresponse()
        body = response.read()
        return json.loads(body) if response.status == 200 else {}
    except (OSError, http.client.HTTPException, ValueError):
        return {}
    finally:
        connection.close()


class Runner:
    """Holds the state of one run; `run()` executes the plan and returns the run folder."""

    def __init__(self, scenario: Scenario, results_dir: Path, progress: ProgressFn = lambda event: None,
                 command_line: list[str] | None = None, sampler_hz: float = 10.0, resume: RunRecord | None = None):
        self.scenario = scenario
        self.progress = progress
        self.sampler_hz = sampler_hz
        self.pinning = resolve_pinning(scenario)
        self.setups_by_key: dict[str, Setup] = {}
        if resume is None:
            self.run_id = new_run_id(scenario.name)
            self.record = RunRecord(run_id=self.run_id, created_at=now_iso(),
                                    command_line=command_line or sys.argv, scenario=scenario.model_dump(mode="json"),
                                    machine=machine.describe(), pinning=self.pinning.as_dict(), seed=scenario.seed,
                                    runner_pid=os.getpid())
            self.done: set[str] = set()
        else:
            # Finish a run: same id, folder, scenario and seed; failed trials are tried again.
            self.run_id = resume.run_id
            self.record = resume
            self.record.trials = resume.ok_trials()
            self.record.skipped = []
            self.record.status = "running"
            self.record.runner_pid = os.getpid()
            self.done = {trial.trial_id for trial in self.record.trials}
        self.run_dir = Path(results_dir) / self.run_id
        self.workdir = self.run_dir / "work"
        self.resuming = resume is not None

    # ---- the whole run ------------------------------------------------------------------

    def run(self) -> Path:
        # A resumed run's folder exists even when no trial finished ok before the interruption.
        self.run_dir.mkdir(parents=True, exist_ok=self.resuming)
        save_run(self.run_dir, self.record)
        self.progress(Event("start", f"run {self.run_id} -> {self.run_dir}", data={"run_dir": str(self.run_dir)}))
        try:
            with _pinned(self.pinning.load_cpus), _sigterm_as_interrupt():
                ready = self._prepare_setups()
                specs = [spec for spec, _ in ready]
                self.setups_by_key = {spec.key: setup for spec, setup in ready}
                if self.scenario.repeat == "auto":
                    self._run_until_converged(specs)
                else:
                    starts = plan(self.scenario, specs, self.scenario.repeat)
                    total = sum(len(group) for group in starts)
                    for group in starts:
                        self._run_start(group, total)
            self.record.status = "complete"
        except BaseException:
            self.record.status = "incomplete"
            raise
        finally:
            self.record.finished_at = now_iso()
            save_run(self.run_dir, self.record)
            with contextlib.suppress(OSError):
                self.workdir.rmdir()
        self.progress(Event("done", f"run {self.run_id} complete", data={"run_dir": str(self.run_dir)}))
        return self.run_dir

    def _run_until_converged(self, specs: list[SetupSpec]) -> None:
        """repeat: auto: whole interleaved rounds until every interval is narrow enough or the cap."""
        scenario = self.scenario
        per_round = sum(len(group) for group in plan(scenario, specs, 1))
        total = per_round * scenario.repeat_cap
        outcome = {"mode": "auto", "target": scenario.repeat_target, "cap": scenario.repeat_cap}
        for repeat in range(scenario.repeat_cap):
            for group in plan(scenario, specs, 1, first_repeat=repeat):
                self._run_start(group, total)
            done, detail = converged(self.record, scenario.repeat_target, scenario.seed)
            outcome.update(repeats=repeat + 1, detail=detail)
            if repeat + 1 >= 3 and done:
                outcome["stopped_by"] = "target"
                break
        else:
            outcome["stopped_by"] = "cap"
        self.record.repeat_outcome = outcome
        word = "every interval within target" if outcome["stopped_by"] == "target" else "cap reached"
        self.progress(Event("repeat", f"repeat auto: {outcome['repeats']} repeats, {word}; {outcome['detail']}"))

    def _prepare_setups(self) -> list[tuple[SetupSpec, Setup]]:
        ready = []
        for spec in self.scenario.setups:
            cls = setups.get(spec.setup)
            reason = cls.check()
            setup = None
            if reason is None:
                setup = cls(spec.options, self.pinning, self.run_id, self.workdir,
                            progress=lambda message, key=spec.key: self.progress(Event("prepare", f"{key}: {message}")))
                try:
                    self.progress(Event("prepare", f"preparing {spec.key}"))
                    setup.prepare()
                except (SetupError, OSError) as error:
                    reason = f"prepare failed: {error}"
            if reason is not None:
                self.record.skipped.append({"setup": spec.setup, "variant": spec.key, "reason": reason})
                save_run(self.run_dir, self.record)
                self.progress(Event("skip", f"skipping {spec.key}: {reason}"))
                continue
            ready.append((spec, setup))
        return ready

    def _run_start(self, group: list[_Trial], total: int) -> None:
        """Launch once (or `copies` times, side by side), run the group's trials, always stop."""
        setup = self.setups_by_key[group[0].spec.key]
        group = [trial for trial in group if _trial_id(trial) not in self.done]  # resume: only what is missing
        if not group:
            return
        try:
            with contextlib.ExitStack() as stack:
                copies = [stack.enter_context(setup.running()) for _ in range(group[0].copies)]
                instance = copies[0] if len(copies) == 1 else _side_by_side(copies)
                for index, trial in enumerate(group):
                    self.progress(Event("trial", trial.key, len(self.record.trials) + 1, total,
                                        {"setup": trial.spec.setup, "workload": trial.workload.name}))
                    self._run_trial(setup, instance, trial, fresh=index == 0)
                    if index + 1 < len(group) and not _alive(instance):
                        for rest in group[index + 1:]:
                            self._fail(setup, rest, "the setup stopped answering during an earlier trial")
                        break
        except (SetupError, OSError) as error:
            # The launch failed (or the stop did): every trial of this start not yet recorded fails.
            recorded = {trial.trial_id for trial in self.record.trials}
            reason = str(error) if isinstance(error, SetupError) else f"{type(error).__name__}: {error}"
            for trial in group:
                if _trial_id(trial) not in recorded:
                    self._fail(setup, trial, reason)

    # ---- one trial ---------------------------------------------------------------------

    def _run_trial(self, setup: Setup, instance: Instance, trial: _Trial, fresh: bool) -> None:
        try:
            record = self._measure(setup, instance, trial, fresh)
        except (SetupError, OSError, RuntimeError, ValueError) as error:
            # An OSError's text alone can be cryptic ("5311 requested and 4080 written" on a full disk).
            self._fail(setup, trial, f"{type(error).__name__}: {error}" if isinstance(error, OSError)
                       else str(error) or type(error).__name__)
            return
        self.record.trials.append(record)
        self.record.order.append(trial.key)
        save_run(self.run_dir, self.record)
        if record.status == "failed":  # measured, but judged failed (no request served, the setup died)
            self.progress(Event("trial_failed", f"{trial.key} failed: {record.error}", data={"trial": record.trial_id}))
            return
        self.progress(Event("trial_done", _trial_line(record), data={"trial": record.trial_id}))

    def _fail(self, setup: Setup, trial: _Trial, reason: str) -> None:
        record = TrialRecord(trial_id=_trial_id(trial), setup=trial.spec.setup, variant=setup.variant(),
                             workload=_workload_label(trial), kind=trial.workload.kind, repeat=trial.repeat,
                             status="failed", error=reason,
                             started_at=now_iso())
        self.record.trials.append(record)
        self.record.order.append(trial.key)
        # Say it before saving: on a full disk the save fails too, and the user must still see why.
        self.progress(Event("trial_failed", f"{trial.key} failed: {reason}", data={"trial": record.trial_id}))
        save_run(self.run_dir, self.record)

    def _measure(self, setup: Setup, instance: Instance, trial: _Trial, fresh: bool) -> TrialRecord:
        workload = trial.workload
        trial_id = _trial_id(trial)
        folder = f"trials/{trial_id}"
        record = TrialRecord(trial_id=trial_id, setup=trial.spec.setup, variant=setup.variant(),
                             workload=_workload_label(trial), kind=workload.kind, repeat=trial.repeat,
                             status="ok", started_at=now_iso(),
                             facts=_jsonable(instance.facts))
        record.facts["fresh_start"] = fresh
        if fresh:
            record.startup_phases_s = dict(instance.phases)
            record.startup_s = instance.startup_s
        if workload.kind == "startup":
            record.inside = _inside_delta({}, get_stats(instance.port), workload)
            return record

        inside_before = get_stats(instance.port)
        engine_before = _engine(instance)
        footprint = workload.kind in ("idle", "density")
        full_every = 1 if footprint else 20  # a footprint wants USS/PSS on every tick
        with Sampler(instance.processes, hz=self.sampler_hz, full_every=full_every) as sampler:
            if footprint:
                time.sleep(workload.warmup)
                began = time.monotonic()
                time.sleep(workload.duration)
                window = (began, time.monotonic())
                result = None
            else:
                result = self._load(instance, workload)
                window = result.window
        inside_after = get_stats(instance.port)
        engine_after = _engine(instance)

        usage = summarize_processes(sampler.process_rows, window)
        record.roles = {role: figures for role, figures in usage["roles"].items() if role in SETUP_ROLES}
        record.loadgen = usage["roles"].get("loadgen", {})
        record.processes = usage["processes"]
        record.host = summarize_host(sampler.host_rows, window)
        record.host["foreign_cpu_cores"] = _foreign_cpu_cores(record, window)
        record.window_t = [window[0], window[1]]
        record.sampler = {"hz": sampler.hz, "ticks": sampler.ticks, "own_cpu_s": sampler.own_cpu_s,
                          "wall_s": sampler.wall_s, "own_cpu_fraction": sampler.own_cpu_fraction}
        record.memory_bytes = _memory_totals(record.roles)
        if trial.copies > 1 or workload.kind == "density":
            record.facts["instances"] = trial.copies
            record.memory_bytes.update({f"{key}_per_instance": value / trial.copies
                                        for key, value in list(record.memory_bytes.items()) if value is not None})
        record.inside = _inside_delta(inside_before, inside_after, workload)
        record.engine = _engine_delta(engine_before, engine_after)
        record.files["processes"] = write_csv(self.run_dir, f"{folder}/processes.csv", PROCESS_COLUMNS,
                                              sampler.process_rows)
        record.files["host"] = write_csv(self.run_dir, f"{folder}/host.csv", HOST_COLUMNS, sampler.host_rows)
        if result is not None:
            record.load = _load_summary(result, workload)
            record.files["latency_ms"] = write_array(self.run_dir, f"{folder}/latency_ms.npy", result.latency_ms)
            record.files["app_ms"] = write_array(self.run_dir, f"{folder}/app_ms.npy", result.app_ms)
            record.cpu_us_per_request = _cpu_per_request(record.roles, result.requests)
            if result.requests == 0:
                record.status = "failed"
                record.error = f"no request succeeded (errors: {result.errors or 'none'})"
        # An app killed mid-window still leaves the requests served before it died: without this the
        # trial would count as ok at a fraction of its real throughput and skew the median.
        if not inside_after and not _alive(instance):
            record.status = "failed"
            errors = f" (load errors: {result.errors})" if result is not None and result.errors else ""
            record.error = f"the setup stopped answering during the trial{errors}"
        return record

    def _load(self, instance: Instance, workload: Workload) -> LoadResult:
        spec = LoadSpec(path=workload.url_path, mode=workload.mode, connections=workload.connections,
                        duration_s=workload.duration, warmup_s=workload.warmup, rate_rps=workload.rate)
        if workload.load == "wrk":
            from bench.load import wrk  # optional external generator

            return wrk.run_wrk(instance.port, spec, self.pinning.load_cpus)
        return run_load(instance.port, spec)


def _trial_id(trial: _Trial) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in trial.spec.key)
    return f"{safe}--{_workload_label(trial)}--r{trial.repeat}"


def _workload_label(trial: _Trial) -> str:
    return f"{trial.workload.name}-x{trial.copies}" if trial.workload.kind == "density" else trial.workload.name


def _side_by_side(copies: list[Instance]) -> Instance:
    """N running copies seen as one: every process of each, phases and facts of the first."""
    return Instance(port=copies[0].port, processes=lambda: [rp for copy in copies for rp in copy.processes()],
                    phases=dict(copies[0].phases), facts={**copies[0].facts, "instances": len(copies)},
                    handle=copies[0].handle)


def _alive(instance: Instance) -> bool:
    return bool(get_stats(instance.port, timeout_s=3.0))


def _engine(instance: Instance) -> dict:
    if instance.engine_accounting is None:
        return {}
    try:
        return _jsonable(instance.engine_accounting())
    except Exception as error:  # the engine's view is a cross-check; its absence is recorded, not fatal
        return {"error": f"{type(error).__name__}: {error}"}


def _foreign_cpu_cores(record: TrialRecord, window: tuple[float, float]) -> float | None:
    """CPU the rest of the machine used during the window, in cores: host busy time minus what
    the setup and the load generator used. Anything well above zero makes figures noisy."""
    seconds = window[1] - window[0]
    busy = record.host.get("cpu_user_s", 0.0) + record.host.get("cpu_sys_s", 0.0)
    ours = sum(r.get("cpu_user_s", 0.0) + r.get("cpu_sys_s", 0.0) for r in (*record.roles.values(), record.loadgen))
    return max(0.0, busy - ours) / seconds if seconds > 0 and record.host else None


def _engine_delta(before: dict, after: dict) -> dict:
    """The engine's own accounting over the trial: counters in ns become seconds used."""
    if not before and not after:
        return {}
    engine = {"before": before, "after": after}
    for key, value in after.items():
        if key.endswith("_ns") and isinstance(value, (int, float)) and isinstance(before.get(key), (int, float)):
            engine[key.removesuffix("_ns") + "_s"] = (value - before[key]) / 1e9
    return engine


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, default=str))


def _memory_totals(roles: dict[str, dict]) -> dict[str, float | None]:
    totals: dict[str, float | None] = {}
    for key in ("rss_bytes", "uss_bytes", "pss_bytes"):
        values = [figures.get(key) for figures in roles.values()]
        totals[key.removesuffix("_bytes")] = None if any(v is None for v in values) or not values else sum(values)
    return totals


def _cpu_per_request(roles: dict[str, dict], requests: int) -> dict[str, float]:
    if requests <= 0:
        return {}
    user = sum(figures.get("cpu_user_s", 0.0) for figures in roles.values())
    system = sum(figures.get("cpu_sys_s", 0.0) for figures in roles.values())
    return {"user": user / requests * 1e6, "sys": system / requests * 1e6}


def _load_summary(result: LoadResult, workload: Workload) -> dict:
    app = percentiles(result.app_ms)
    return {
        "generator": result.generator,
        "path": workload.url_path,
        "mode": workload.mode,
        "connections": workload.connections,
        "rate_rps": workload.rate,
        "requests": result.requests,
        "sent": result.sent,
        "errors": result.errors,
        "duration_s": result.duration_s,
        "throughput_rps": result.throughput_rps,
        "latency_ms": percentiles(result.latency_ms),
        "app_ms": app,
        "notes": result.notes,
    }


def _inside_delta(before: dict, after: dict, workload: Workload) -> dict:
    """The app's own view: CPU it used during the trial and requests it served, from /stats."""
    if not after:
        return {}
    inside = {key: after.get(key) for key in ("pid", "ppid", "uid", "kernel", "hostname", "max_rss_bytes",
                                              "rss_bytes", "threads", "cgroup", "cpus_allowed", "python")}
    if before:
        inside["cpu_user_s"] = after["cpu_user_s"] - before["cpu_user_s"]
        inside["cpu_sys_s"] = after["cpu_sys_s"] - before["cpu_sys_s"]
        path = workload.url_path.split("?")[0] if workload.kind == "load" else None
        if path:
            served_before = before.get("requests_served", {}).get(path, 0)
            inside["requests_served"] = after.get("requests_served", {}).get(path, 0) - served_before
    return inside


def _trial_line(record: TrialRecord) -> str:
    variant = "" if record.variant == "default" else f" [{record.variant}]"
    label = f"{record.setup}{variant} {record.workload}"
    if record.kind == "load":
        latency = record.load["latency_ms"]
        cpu = record.cpu_us_per_request
        return (f"{label}: {record.load['throughput_rps']:,.0f} req/s, p99 {latency['p99']:.2f} ms, "
                f"CPU {cpu.get('user', math.nan) + cpu.get('sys', math.nan):.0f} us/req")
    if record.kind == "startup":
        phases = ", ".join(f"{name.removesuffix('_s')} {value:.3f}" for name, value in record.startup_phases_s.items())
        return f"{label}: started in {record.startup_s:.3f} s ({phases})"
    rss = record.memory_bytes.get("rss_per_instance", record.memory_bytes.get("rss"))
    each = " per instance" if "rss_per_instance" in record.memory_bytes else ""
    return f"{label}: RSS {rss / 2**20 if rss else math.nan:.1f} MB{each}"


def run_scenario(scenario: Scenario, results_dir: Path, progress: ProgressFn = lambda event: None,
                 command_line: list[str] | None = None) -> Path:
    """Run every trial of `scenario`; returns the run folder (written after every trial)."""
    return Runner(scenario, results_dir, progress, command_line).run()


def resume_run(run_dir: Path, progress: ProgressFn = lambda event: None) -> Path:
    """Finish an incomplete run with its own settings: the trials not recorded as ok are run."""
    record = load_run(run_dir)
    try:
        scenario = Scenario.model_validate(record.scenario)
    except ValueError as error:
        raise SetupError(f"{run_dir}: its scenario no longer validates ({error}); start a new run") from None
    if record.machine.get("hostname") != machine.describe()["hostname"]:
        progress(Event("skip", "warning: resuming on another machine than the run started on"))
    return Runner(scenario, Path(run_dir).parent, progress, resume=record).run()
