"""Turn the sampler's rows into per-role figures over exactly the measured window."""

from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np
import psutil

from bench.metrics.sampler import HOST_COLUMNS, PROCESS_COLUMNS

_COLUMN = {name: index for index, name in enumerate(PROCESS_COLUMNS)}
_HOST = {name: index for index, name in enumerate(HOST_COLUMNS)}


def _at(times: np.ndarray, values: np.ndarray, when: float) -> float:
    """Cumulative counter interpolated at `when`, clamped to the span that was sampled."""
    return float(np.interp(when, times, values))


def summarize_processes(rows: list[tuple], window: tuple[float, float]) -> dict:
    """Per-role CPU seconds spent inside `window` and mean memory during it.

    CPU counters are cumulative, so each process's use is its counter interpolated at the
    window's end minus at its start (a process born inside the window starts from its first row).
    Memory is summed over a role's processes per tick, then averaged over the ticks in the window.
    """
    start, end = window
    by_pid: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_pid[row[_COLUMN["pid"]]].append(row)

    roles: dict[str, dict] = defaultdict(lambda: {"cpu_user_s": 0.0, "cpu_sys_s": 0.0, "processes": 0})
    processes = []
    for pid, pid_rows in by_pid.items():
        times = np.array([r[_COLUMN["t"]] for r in pid_rows])
        if times[-1] < start or times[0] > end:
            continue
        role, name = pid_rows[-1][_COLUMN["role"]], pid_rows[-1][_COLUMN["name"]]
        user = np.array([r[_COLUMN["cpu_user_s"]] for r in pid_rows])
        system = np.array([r[_COLUMN["cpu_sys_s"]] for r in pid_rows])
        cpu_user_s = _at(times, user, end) - _at(times, user, start)
        cpu_sys_s = _at(times, system, end) - _at(times, system, start)
        rss = [r[_COLUMN["rss_bytes"]] for r in pid_rows if start <= r[_COLUMN["t"]] <= end]
        roles[role]["cpu_user_s"] += cpu_user_s
        roles[role]["cpu_sys_s"] += cpu_sys_s
        roles[role]["processes"] += 1
        processes.append({"pid": pid, "role": role, "name": name, "cpu_user_s": cpu_user_s, "cpu_sys_s": cpu_sys_s,
                          "rss_bytes_max": max(rss) if rss else None})

    for role, figures in _memory_by_role(rows, window).items():
        if role in roles:
            roles[role].update(figures)
    return {"roles": dict(roles), "processes": processes}


def _memory_by_role(rows: list[tuple], window: tuple[float, float]) -> dict[str, dict]:
    start, end = window
    per_tick: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0, 0.0]))
    for row in rows:
        t = row[_COLUMN["t"]]
        if not start <= t <= end:
            continue
        sums = per_tick[row[_COLUMN["role"]]][t]
        sums[0] += row[_COLUMN["rss_bytes"]]
        sums[1] += row[_COLUMN["uss_bytes"]]  # NaN on light ticks: NaN marks the whole tick
        sums[2] += row[_COLUMN["pss_bytes"]]
        sums[3] += row[_COLUMN["threads"]]
    figures = {}
    for role, ticks in per_tick.items():
        values = np.array(list(ticks.values()))
        figures[role] = {
            "rss_bytes": float(values[:, 0].mean()),
            "uss_bytes": _nanmean(values[:, 1]),
            "pss_bytes": _nanmean(values[:, 2]),
            "threads": _nanmean(values[:, 3]),
        }
    return figures


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def summarize_host(rows: list[tuple], window: tuple[float, float]) -> dict:
    """Host-wide CPU over the window: seconds busy (user, sys) and the busy fraction of all CPUs."""
    if len(rows) < 2:
        return {}
    times = np.array([r[_HOST["t"]] for r in rows])
    delta = {}
    for name in ("cpu_user_s", "cpu_sys_s", "cpu_idle_s", "cpu_iowait_s", "cpu_steal_s"):
        values = np.array([r[_HOST[name]] for r in rows])
        delta[name] = _at(times, values, window[1]) - _at(times, values, window[0])
    total = sum(delta.values())
    busy = delta["cpu_user_s"] + delta["cpu_sys_s"]
    delta["busy_fraction"] = busy / total if total > 0 else math.nan
    # The host's MemAvailable during the window (its median): what the machine could still hand out.
    column = _HOST["mem_available_bytes"]
    available = [r[column] for r in rows if window[0] <= r[_HOST["t"]] <= window[1] and math.isfinite(r[column])]
    delta["mem_available_bytes"] = float(np.median(available)) if available else None
    return delta


def mem_available_now(samples: int = 5, interval_s: float = 0.1) -> float:
    """The host's MemAvailable in bytes: the median of a few reads (it moves as the kernel reclaims)."""
    reads = []
    for index in range(samples):
        if index:
            time.sleep(interval_s)
        reads.append(psutil.virtual_memory().available)
    return float(np.median(reads))
