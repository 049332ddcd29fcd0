"""Measuring one trial: take a running setup, apply the workload while sampling every process it
costs, and return what was observed. Prints nothing and writes nothing: the caller stores the
measurement (bench.runner.persist) and reports progress."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from bench.load.builtin import LoadResult
from bench.metrics.netpath import PathProbe, loopback_path, quiet_for
from bench.metrics.sampler import Sampler
from bench.metrics.speed import PROBE_S, machine_speed
from bench.metrics.window import summarize_host, summarize_processes
from bench.errors import SetupError
from bench.results import TrialRecord, now_iso
from bench.path_records import NetworkPathRecord
from bench.records import (HostSample, LoadSummary, MemoryBytes, ProcessSample, RoleSample, SamplerStats, Speed,
                           TrialFacts)
from bench.roles import ROLE_LOADGEN, RoleProcess
from bench.runner.figures import (cpu_per_request, engine_delta, foreign_cpu_cores, inside_delta, jsonable,
                                  load_summary, memory_totals)
from bench.runner.plan import PlannedTrial
from bench.scenario import Workload
from bench.setups.base import Instance

LoadFn = Callable[[int, Workload], LoadResult]  # (port, workload) -> what the load generator measured
FixedFn = Callable[[], list[RoleProcess]]  # a setup's fixed-cost processes (Setup.fixed_processes)


@dataclass
class Measurement:
    """A trial's record and the raw data that goes to files next to it."""

    record: TrialRecord
    process_rows: list[tuple] = field(default_factory=list)
    host_rows: list[tuple] = field(default_factory=list)
    latency_ms: np.ndarray | None = None
    app_ms: np.ndarray | None = None


def _get(instance: Instance, path: str, timeout_s: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(instance.address, instance.port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        connection.close()


def get_stats(instance: Instance, timeout_s: float = 5.0) -> dict:
    """The app's own view from inside the layer (/stats); {} if it has none or does not answer."""
    if instance.stats_path is None:
        return {}
    status, body = _get(instance, instance.stats_path, timeout_s)
    try:
        stats = json.loads(body) if status == 200 else {}
    except ValueError:
        return {}
    return stats if isinstance(stats, dict) else {}


def alive(instance: Instance, timeout_s: float = 3.0) -> bool:
    """True while the app still answers: its /stats, or its ready path when it has no inside view."""
    if instance.stats_path is not None:
        return bool(get_stats(instance, timeout_s=timeout_s))
    return _get(instance, instance.ready_path, timeout_s)[0] == 200


def new_record(trial: PlannedTrial, variant: str, status: str = "ok", error: str | None = None) -> TrialRecord:
    """A trial's record before anything is measured (or the record of a trial that failed to run)."""
    return TrialRecord(trial_id=trial.trial_id, setup=trial.spec.setup, variant=variant, app=trial.app,
                       workload=trial.workload_label, kind=trial.workload.kind, repeat=trial.repeat,
                       status=status, error=error, started_at=now_iso(), start_id=trial.start_id)


def measure_trial(instance: Instance, trial: PlannedTrial, variant: str, fresh: bool, load: LoadFn,
                  sampler_hz: float = 10.0, fixed: FixedFn | None = None, trace_hops: bool = False,
                  speed_cpus: tuple[int, ...] | None = None) -> Measurement:
    """Measure one trial on a running instance; `fresh` when this trial's start was its own.

    `fixed` gives the setup's fixed-cost processes (engine daemons): sampled over the same window,
    stored apart in `record.fixed`, never counted in the instance's figures. `trace_hops`: count the
    app's own packets per hop with eBPF too, where it runs (bench.metrics.hoptrace). `speed_cpus`:
    measure the machine's speed on these CPUs just before and just after a load trial
    (bench.metrics.speed)."""
    workload = trial.workload
    record = new_record(trial, variant)
    record.facts = TrialFacts.model_validate({**jsonable(instance.facts), "fresh_start": fresh})
    if fresh:
        record.startup_phases_s = dict(instance.phases)
        record.startup_s = instance.startup_s
    if workload.kind == "startup":
        record.inside = inside_delta({}, get_stats(instance), workload)
        return Measurement(record)
    probe = PathProbe(instance.network_path or loopback_path(),
                      quiet_s=quiet_for(workload.duration),
                      trace=trace_hops, port=instance.port) if workload.kind == "load" else None
    if probe is not None:
        probe.quiet()  # before the /stats read below, so that request is not in the quiet baseline
    inside_before, engine_before = get_stats(instance), _engine(instance)
    if probe is not None:
        probe.before()
    fixed_roles: set[str] = set()
    speed_before = machine_speed(speed_cpus) if speed_cpus and workload.kind == "load" else None
    with probe.tracing() if probe is not None else contextlib.nullcontext():
        sampler, result, window = _sampled_window(_with_fixed(instance, fixed, fixed_roles), workload, load,
                                                  sampler_hz, counters=probe.read if probe is not None else None)
    if speed_before is not None:
        record.speed = Speed.model_validate(_bracketed_speed(speed_before, speed_cpus))
    inside_after, engine_after = get_stats(instance), _engine(instance)
    if probe is not None:
        probe.after()
    measurement = Measurement(record, sampler.process_rows, sampler.host_rows)
    _fill_usage(record, sampler, window, fixed_roles)
    _per_instance(record, trial)
    record.inside = inside_delta(inside_before, inside_after, workload)
    record.engine = engine_delta(engine_before, engine_after)
    if result is not None:
        record.load = LoadSummary.model_validate(load_summary(result, workload))
        if probe is not None:
            record.network_path = _network_path(probe, sampler.counter_rows, window, result.requests, inside_before,
                                                inside_after, record.inside.requests_served if record.inside else None)
        record.cpu_us_per_request = cpu_per_request(record.roles, result.requests)
        measurement.latency_ms, measurement.app_ms = result.latency_ms, result.app_ms
        if result.requests == 0:
            record.status, record.error = "failed", f"no request succeeded (errors: {result.errors or 'none'})"
    # An app killed mid-window still leaves the requests served before it died: without this the
    # trial would count as ok at a fraction of its real throughput and skew the median.
    # Two chances, as the /stats read after the window is one for an app that has it: on a loaded
    # machine one probe can time out although the app is fine.
    answered = bool(inside_after) if instance.stats_path is not None else alive(instance, timeout_s=5.0)
    if not answered and not alive(instance):
        errors = f" (load errors: {result.errors})" if result is not None and result.errors else ""
        record.status, record.error = "failed", f"the setup stopped answering during the trial{errors}"
    return measurement


def _network_path(probe, rows, window, requests: int, before: dict, after: dict, served) -> NetworkPathRecord:
    """The probe's summary of the trial's path, typed as the record stores it."""
    return NetworkPathRecord.model_validate(probe.summary(rows, window, requests, before, after, served))


def _bracketed_speed(before: float, cpus: tuple[int, ...]) -> dict:
    """The machine's speed around a trial: the geometric mean of the probes before and after."""
    return {"hashes_per_s": math.sqrt(before * machine_speed(cpus)), "cpus": list(cpus), "probe_s": PROBE_S}


def _per_instance(record: TrialRecord, trial: PlannedTrial) -> None:
    """Several copies measured at once (density, copies > 1): memory per instance too."""
    if trial.copies > 1 or trial.workload.kind == "density":
        record.facts.instances = trial.copies
        memory = record.memory_bytes
        record.memory_bytes = memory.model_copy(update={
            f"{part}_per_instance": getattr(memory, part) / trial.copies for part in ("rss", "uss", "pss")
            if getattr(memory, part) is not None})


def load_for(instance: Instance, load: LoadFn, aimed: Callable[[str], LoadFn], split: bool) -> LoadFn:
    """`load`, or for an instance reached at its own address (a container's IP, asked for by its
    variant) `aimed(address)`, once the setup has checked that address again; SetupError otherwise."""
    path = instance.network_path
    reached = getattr(path, "reached_at", None)
    if reached is None:
        return load
    if reached != instance.address or split or path.check_reach is None:
        raise SetupError(f"refusing to load {reached}: not this instance's checked address on this machine")
    path.check_reach()
    return aimed(reached)


def _with_fixed(instance: Instance, fixed: FixedFn | None, fixed_roles: set[str]) -> Instance:
    """The instance, its processes joined by the fixed-cost ones (whose roles land in fixed_roles).

    The fixed ones (an engine's daemons) outlive any trial: they are looked up once per trial, not
    on every refresh of the sampler (finding containerd among dockerd's children scans every process)."""
    if fixed is None:
        return instance
    found: list[RoleProcess] = []

    def discover() -> list[RoleProcess]:
        if not found:
            found.extend(fixed())
            fixed_roles.update(role_process.role for role_process in found)
        return instance.processes() + found
    return replace(instance, processes=discover)


# USS and PSS (smaps_rollup: ~0.3-1 ms a process) once per this many ticks of a load trial (2 s at 10 Hz).
LOAD_FULL_EVERY = 20


def _sampled_window(instance: Instance, workload: Workload, load: LoadFn, sampler_hz: float, counters=None):
    """Run the workload (or wait, for a footprint) inside a sampler, which also reads `counters` (the
    network path's) on every tick; (sampler, load result, window)."""
    if workload.kind in ("idle", "density"):  # a footprint wants USS/PSS on every tick
        with Sampler(instance.processes, hz=sampler_hz, full_every=1, counters=counters) as sampler:
            time.sleep(workload.warmup)
            began = time.monotonic()
            time.sleep(workload.duration)
            return sampler, None, (began, time.monotonic())
    # Under load, memory is read where it counts: the first read in the middle of the window's first
    # LOAD_FULL_EVERY ticks (the middle of a short window), none in the warm-up, which no figure uses.
    first = round(workload.warmup * sampler_hz + min(LOAD_FULL_EVERY, workload.duration * sampler_hz) / 2)
    with Sampler(instance.processes, hz=sampler_hz, full_every=LOAD_FULL_EVERY, full_first=first,
                 counters=counters) as sampler:
        result = load(instance.port, workload)
    return sampler, result, result.window


def _fill_usage(record: TrialRecord, sampler: Sampler, window: tuple[float, float], fixed_roles: set[str]) -> None:
    usage = summarize_processes(sampler.process_rows, window)
    roles = {role: figures for role, figures in usage["roles"].items()
             if role != ROLE_LOADGEN and role not in fixed_roles}
    fixed = {role: figures for role, figures in usage["roles"].items() if role in fixed_roles}
    record.roles = {role: RoleSample.model_validate(figures) for role, figures in roles.items()}
    record.fixed = {role: RoleSample.model_validate(figures) for role, figures in fixed.items()}
    loadgen = usage["roles"].get(ROLE_LOADGEN, {})
    record.loadgen = RoleSample.model_validate(loadgen) if loadgen else None
    record.processes = [ProcessSample.model_validate(process) for process in usage["processes"]]
    host = summarize_host(sampler.host_rows, window)
    host["foreign_cpu_cores"] = foreign_cpu_cores(host, {**roles, **fixed}, loadgen, window[1] - window[0])
    record.host = HostSample.model_validate(host)
    record.window_t = [window[0], window[1]]
    record.sampler = SamplerStats(hz=sampler.hz, ticks=sampler.ticks, own_cpu_s=sampler.own_cpu_s,
                                  wall_s=sampler.wall_s, own_cpu_fraction=sampler.own_cpu_fraction)
    record.memory_bytes = MemoryBytes.model_validate(memory_totals(roles))


def _engine(instance: Instance) -> dict:
    if instance.engine_accounting is None:
        return {}
    try:
        return jsonable(instance.engine_accounting())
    except Exception as error:  # the engine's view is a cross-check; its absence is recorded, not fatal
        return {"error": f"{type(error).__name__}: {error}"}
