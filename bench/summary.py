"""A run's summary: medians over repeats with intervals, per setup, variant and workload, and
the overhead of each setup as a ratio to bare. Its JSON form is the contract `bench show
--format json` prints and other tools read; `SUMMARY_VERSION` changes when it does.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict

import numpy as np

from bench import stats
from bench.results import RunRecord, TrialRecord

SUMMARY_VERSION = 1
MB = 1024 * 1024
BASELINE = "bare"
BUSY_MACHINE_CORES = 0.15  # other processes' CPU during a trial above this: its figures are suspect


def _median(values) -> float | None:
    data = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return float(np.median(data)) if data else None


def _seed(base: int, *parts: str) -> int:
    """A stable sub-seed per cell, so adding a setup does not change another cell's interval."""
    return (base + zlib.crc32("/".join(parts).encode())) % 2**32


def metric_values(trials: list[TrialRecord]) -> dict[str, list[float]]:
    """Per metric, one value per ok trial (the unit is in the name). Public: compare uses it too."""
    values: dict[str, list[float]] = {name: [] for name in stats.METRIC_WORDS}
    for trial in trials:
        if trial.load:
            values["throughput_rps"].append(trial.load.get("throughput_rps", math.nan))
            latency = trial.load.get("latency_ms", {})
            values["latency_p50_ms"].append(latency.get("p50", math.nan))
            values["latency_p99_ms"].append(latency.get("p99", math.nan))
        if trial.cpu_us_per_request:
            values["cpu_us_per_request"].append(trial.cpu_us_per_request["user"] + trial.cpu_us_per_request["sys"])
        if trial.memory_bytes.get("rss") is not None:
            values["memory_rss_mb"].append(trial.memory_bytes["rss"] / MB)
        if trial.startup_s is not None:
            values["startup_s"].append(trial.startup_s)
    return values


def _group(record: RunRecord) -> "OrderedDict[tuple[str, str, str], list[TrialRecord]]":
    groups: OrderedDict[tuple[str, str, str], list[TrialRecord]] = OrderedDict()
    for trial in record.trials:
        groups.setdefault((trial.setup, trial.variant, trial.workload), []).append(trial)
    setup_order = {name: index for index, name in enumerate(dict.fromkeys(t.setup for t in record.trials))}
    setup_order[BASELINE] = -1
    workload_order = {w.get("name"): i for i, w in enumerate(record.scenario.get("workloads", []))}
    keys = sorted(groups, key=lambda k: (workload_order.get(k[2], 99), setup_order.get(k[0], 99)))
    return OrderedDict((key, groups[key]) for key in keys)


def _cell(key: tuple[str, str, str], trials: list[TrialRecord], seed: int) -> dict:
    setup, variant, workload = key
    ok = [trial for trial in trials if trial.status == "ok"]
    values = metric_values(ok)
    throughput = stats.median_ci(values["throughput_rps"], _seed(seed, *key, "throughput"))
    loads = [trial.load for trial in ok if trial.load]
    cell = {
        "setup": setup,
        "variant": variant,
        "workload": workload,
        "repeats": len(ok),
        "interval_method": stats.interval_method(len(ok)),
        "failed": len(trials) - len(ok),
        "errors": sorted({trial.error for trial in trials if trial.error}),
        "throughput_rps": throughput.as_dict() if loads else None,
        "latency_ms": {name: _median(load.get("latency_ms", {}).get(name) for load in loads)
                       for name in stats.PERCENTILES} if loads else None,
        "latency_p99_ms_ci": stats.median_ci(values["latency_p99_ms"], _seed(seed, *key, "p99")).as_dict()
        if loads else None,
        "app_ms_p50": _median(load.get("app_ms", {}).get("p50") for load in loads) if loads else None,
        "cpu_us_per_request": {part: _median(t.cpu_us_per_request.get(part) for t in ok)
                               for part in ("user", "sys")} if values["cpu_us_per_request"] else None,
        "memory_mb": {part: _median((t.memory_bytes.get(part) or math.nan) / MB for t in ok)
                      for part in ("rss", "uss", "pss")} if values["memory_rss_mb"] else None,
        "memory_per_instance_mb": _median((t.memory_bytes.get("rss_per_instance") or math.nan) / MB for t in ok),
        "instances": next((t.facts.get("instances") for t in ok if t.facts.get("instances")), None),
        "startup_s": _median(values["startup_s"]),
        "startup_s_ci": stats.median_ci(values["startup_s"], _seed(seed, *key, "startup")).as_dict()
        if values["startup_s"] else None,
        "startup_phases_s": _phases(ok),
        "roles": _roles(ok),
        "inside": _inside(ok),
        "errors_by_kind": _error_counts(loads),
        "noisy": stats.is_noisy(values["throughput_rps"]) if loads else stats.is_noisy(values["startup_s"]),
        "spread": stats.spread(values["throughput_rps"] if loads else values["startup_s"]),
        # The worst repeat, not the median: one disturbed repeat is enough to distrust a cell.
        "foreign_cpu_cores": max((t.host.get("foreign_cpu_cores") or 0.0 for t in ok), default=None),
        "busy_repeats": sum(1 for t in ok if (t.host.get("foreign_cpu_cores") or 0.0) > BUSY_MACHINE_CORES),
        "accel": next((t.facts.get("accel") for t in ok if t.facts.get("accel")), None),
    }
    return cell


def _phases(trials: list[TrialRecord]) -> dict[str, float]:
    names = list(dict.fromkeys(name for t in trials for name in t.startup_phases_s))
    return {name: _median(t.startup_phases_s.get(name) for t in trials if t.startup_phases_s) for name in names}


def _roles(trials: list[TrialRecord]) -> dict[str, dict]:
    roles: dict[str, dict] = {}
    names = list(dict.fromkeys(role for t in trials for role in t.roles))
    for role in names:
        requests = [(t.roles.get(role, {}), t.load.get("requests", 0)) for t in trials]
        roles[role] = {
            "cpu_user_us_per_request": _median(r.get("cpu_user_s", 0) / n * 1e6 for r, n in requests if n),
            "cpu_sys_us_per_request": _median(r.get("cpu_sys_s", 0) / n * 1e6 for r, n in requests if n),
            "rss_mb": _median((r.get("rss_bytes") or math.nan) / MB for r, _ in requests),
            "uss_mb": _median((r.get("uss_bytes") or math.nan) / MB for r, _ in requests),
            "processes": _median(r.get("processes", 0) for r, _ in requests),
        }
    return roles


def _inside(trials: list[TrialRecord]) -> dict:
    """The app's own view, as medians: CPU per request it saw itself, its RSS, user and kernel."""
    views = [t for t in trials if t.inside]
    if not views:
        return {}
    last = views[-1].inside
    per_request = [(t.inside.get("cpu_user_s", 0) + t.inside.get("cpu_sys_s", 0)) / t.inside["requests_served"] * 1e6
                   for t in views if isinstance(t.inside.get("requests_served"), int) and t.inside["requests_served"]]
    return {"cpu_us_per_request": _median(per_request), "rss_mb": _median(t.inside.get("rss_bytes", 0) / MB
                                                                          for t in views),
            "uid": last.get("uid"), "kernel": last.get("kernel"), "ppid": last.get("ppid"),
            "requests_served": _median(t.inside.get("requests_served") for t in views)}


def _error_counts(loads: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for load in loads:
        for kind, count in load.get("errors", {}).items():
            counts[kind] = counts.get(kind, 0) + count
    return counts


def _overhead(groups, seed: int) -> list[dict]:
    baselines = {key[2]: trials for key, trials in groups.items() if key[0] == BASELINE}
    rows = []
    for key, trials in groups.items():
        if key[0] == BASELINE or key[2] not in baselines:
            continue
        mine = metric_values([t for t in trials if t.status == "ok"])
        base = metric_values([t for t in baselines[key[2]] if t.status == "ok"])
        for metric in stats.METRIC_WORDS:
            if metric == "startup_s" or not mine[metric] or not base[metric]:
                continue  # start-up belongs to a setup variant, not a workload: pooled below
            ratio = stats.ratio_ci(mine[metric], base[metric], _seed(seed, *key, metric))
            rows.append({"setup": key[0], "variant": key[1], "workload": key[2], "metric": metric,
                         "ratio": ratio.as_dict(), "verdict": stats.verdict(metric, ratio)})
    return rows + _startup_overhead(groups, seed)


def _startup_overhead(groups, seed: int) -> list[dict]:
    """One start-up row per setup variant: every fresh start of it, whatever workload followed."""
    starts: dict[tuple[str, str], list[float]] = {}
    for (setup, variant, _), trials in groups.items():
        starts.setdefault((setup, variant), []).extend(
            t.startup_s for t in trials if t.status == "ok" and t.startup_s is not None)
    base = [value for (setup, _), values in starts.items() if setup == BASELINE for value in values]
    rows = []
    for (setup, variant), values in starts.items():
        if setup == BASELINE or not values or not base:
            continue
        ratio = stats.ratio_ci(values, base, _seed(seed, setup, variant, "startup_s"))
        rows.append({"setup": setup, "variant": variant, "workload": "start-up", "metric": "startup_s",
                     "ratio": ratio.as_dict(), "verdict": stats.verdict("startup_s", ratio)})
    return rows


def summarize(record: RunRecord) -> dict:
    """The JSON contract of `bench show --format json` (see module docstring)."""
    groups = _group(record)
    results = [_cell(key, trials, record.seed) for key, trials in groups.items()]
    # Load trials only: idle and density trials read USS/PSS on every tick on purpose.
    samplers = [t.sampler.get("own_cpu_fraction") for t in record.ok_trials() if t.sampler and t.kind == "load"]
    return {
        "summary_version": SUMMARY_VERSION,
        "run_id": record.run_id,
        "status": record.effective_status(),
        "scenario": record.scenario.get("name"),
        "created_at": record.created_at,
        "machine": record.machine,
        "pinning": record.pinning,
        "seed": record.seed,
        "confidence": stats.CONFIDENCE,
        "skipped": record.skipped,
        "sampler_cpu_fraction": _median(samplers),
        "results": results,
        "overhead": _overhead(groups, record.seed) if len({k[0] for k in groups}) > 1 else [],
    }
