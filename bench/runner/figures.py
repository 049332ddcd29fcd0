"""Figures derived from what a trial observed: memory totals, CPU per request, the machine's
other load, the engine's and the app's own accounting. Pure functions of their inputs."""

from __future__ import annotations

import json

import numpy as np

from bench.load.spec import LoadResult, is_generator_bound
from bench.records import CpuPerRequest, InsideView, RoleSample
from bench.scenario import Workload
from bench.stats import fast_end, percentiles
from bench.vocabulary import MIB_BYTES


def jsonable(data: dict) -> dict:
    """data with everything JSON cannot hold turned into strings (facts may hold paths)."""
    return json.loads(json.dumps(data, default=str))


def memory_totals(roles: dict[str, dict]) -> dict[str, float | None]:
    """rss, uss and pss in bytes summed over the setup's roles (None when any role lacks one)."""
    totals: dict[str, float | None] = {}
    for key in ("rss_bytes", "uss_bytes", "pss_bytes"):
        values = [figures.get(key) for figures in roles.values()]
        totals[key.removesuffix("_bytes")] = None if any(v is None for v in values) or not values else sum(values)
    return totals


def cpu_per_request(roles: dict[str, RoleSample], requests: int) -> CpuPerRequest | None:
    """User and system CPU of the setup's processes per completed request, in µs."""
    if requests <= 0:
        return None
    user = sum(figures.cpu_user_s or 0.0 for figures in roles.values())
    system = sum(figures.cpu_sys_s or 0.0 for figures in roles.values())
    return CpuPerRequest(user_us=user / requests * 1e6, sys_us=system / requests * 1e6)


def foreign_cpu_cores(host: dict, roles: dict[str, dict], loadgen: dict, seconds: float) -> float | None:
    """CPU the rest of the machine used during the window, in cores: host busy time minus what
    the setup and the load generator used. Anything well above zero makes figures noisy."""
    if seconds <= 0 or not host:
        return None
    busy = host.get("cpu_user_s", 0.0) + host.get("cpu_sys_s", 0.0)
    ours = sum(r.get("cpu_user_s", 0.0) + r.get("cpu_sys_s", 0.0) for r in (*roles.values(), loadgen))
    return max(0.0, busy - ours) / seconds


def engine_delta(before: dict, after: dict) -> dict:
    """The engine's own accounting over the trial: counters in ns become seconds used."""
    if not before and not after:
        return {}
    engine = {"before": before, "after": after}
    for key, value in after.items():
        if key.endswith("_ns") and isinstance(value, (int, float)) and isinstance(before.get(key), (int, float)):
            engine[key.removesuffix("_ns") + "_s"] = (value - before[key]) / 1e9
    return engine


def inside_delta(before: dict, after: dict, workload: Workload) -> InsideView | None:
    """The app's own view: who and where it runs (the fields InsideView knows of its /stats), and the
    CPU it used and the requests it served during the trial; None when it has no view."""
    if not after:
        return None
    inside = InsideView.model_validate({key: after.get(key) for key in InsideView.model_fields
                                        if key not in ("cpu_user_s", "cpu_sys_s", "requests_served")})
    if before:
        inside.cpu_user_s = after["cpu_user_s"] - before["cpu_user_s"]
        inside.cpu_sys_s = after["cpu_sys_s"] - before["cpu_sys_s"]
        path = workload.url_path.split("?")[0] if workload.kind == "load" else None
        if path:
            served_before = before.get("requests_served", {}).get(path, 0)
            inside.requests_served = after.get("requests_served", {}).get(path, 0) - served_before
    return inside


def _mean(values) -> float | None:
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    return float(data.mean()) if data.size else None


def load_summary(result: LoadResult, workload: Workload) -> dict:
    """What a trial's record keeps of a load result (the raw latencies go to files)."""
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
        "app_ms": {"p5": fast_end(result.app_ms), **percentiles(result.app_ms)},
        # Means, in ms, beside the percentiles: what per-request CPU (a mean too) adds up against.
        "latency_mean_ms": _mean(result.latency_ms),
        "app_mean_ms": _mean(result.app_ms),
        "longest_gap_ms": None if result.longest_gap_s is None else result.longest_gap_s * 1e3,
        "longest_gap_end_s": result.longest_gap_end_s,
        "notes": result.notes,
        # The generator's own use of its CPUs over the window: at 90% busy it, not the app, set the pace.
        "generator_stats": {"processes": result.generator_processes, "cpu_s": result.generator_cpu_s,
                            "wait_s": result.generator_wait_s, "busy_fraction": result.generator_busy_fraction,
                            "runnable_fraction": result.generator_runnable_fraction,
                            "bound": is_generator_bound(result)},
    }


def bracket_available_drop(record, before: float, after: float) -> None:
    """Set a density trial's MemAvailable drop (total and per instance) against the mean of the
    reads before the copies started and after they stopped; `record` is a TrialRecord."""
    during = record.host.mem_available_bytes
    if during is None:
        return
    instances = record.facts.instances or 1
    record.host.mem_available_before_bytes = before
    record.host.mem_available_after_bytes = after
    record.memory_bytes.available_drop = (before + after) / 2 - during
    record.memory_bytes.available_drop_per_instance = record.memory_bytes.available_drop / instances


RAW_BYTES_PER_REQUEST = 16  # latency_ms.npy and app_ms.npy: one float64 each per completed request
LONG_TRIAL_S = 30.0  # from this long on, a trial says what it will store before it starts
NOMINAL_RPS = 10_000  # the rate an estimate is quoted at when no trial of the run has shown one


def disk_estimate(workload: Workload, cell_rates: list[float], run_rates: list[float]) -> str | None:
    """What a long load trial's raw latencies will take on disk, in words; None for a short one.

    From the rate its cell's earlier repeats reached, else the fastest trial of the run so far,
    else per NOMINAL_RPS requests per second (the rate is not known before anything ran)."""
    if workload.kind != "load" or workload.duration < LONG_TRIAL_S:
        return None
    rate, basis = ((max(cell_rates), "its earlier repeats reached") if cell_rates else
                   (max(run_rates), "the fastest trial so far reached") if run_rates else (None, ""))
    if workload.mode == "open" and workload.rate:
        rate, basis = workload.rate, "its open-loop rate"
    if rate is None:
        per_nominal = workload.duration * NOMINAL_RPS * RAW_BYTES_PER_REQUEST / MIB_BYTES
        return (f"a {workload.duration:g} s trial stores {RAW_BYTES_PER_REQUEST} bytes per request: "
                f"about {per_nominal:,.0f} MiB per {NOMINAL_RPS:,} req/s it reaches")
    megabytes = workload.duration * rate * RAW_BYTES_PER_REQUEST / MIB_BYTES
    return (f"this {workload.duration:g} s trial will store about {megabytes:,.0f} MiB of raw latencies "
            f"({RAW_BYTES_PER_REQUEST} bytes per request at the {rate:,.0f} req/s {basis})")
