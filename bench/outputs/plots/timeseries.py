"""CPU and memory over each trial, from the sampler's processes.csv (warm-up included)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from bench.vocabulary import MIB_BYTES
from bench.model import Run
from bench.outputs.plots._common import colour, new_figure, plain_ticks, save, spans_decades, styled, tick_label
from bench.roles import ROLE_LOADGEN

LINESTYLES = ("-", "--", ":", "-.")
SMOOTH_S = 0.5  # CPU rates are taken over this many seconds of samples


def read_series(run: Run, trial) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(seconds since the first sample, CPU in % of one core, RSS in MiB) of a trial, summed over the
    setup's own processes (the load generator's row is left out); None when its processes.csv is
    missing or too short, or unreadable (then the run reports it)."""
    ticks = run.process_samples(trial)
    if ticks is None:
        return None
    by_pid: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for tick in ticks:
        if tick.role != ROLE_LOADGEN:
            by_pid[tick.pid].append((tick.t, tick.cpu_user_s + tick.cpu_sys_s, tick.rss_bytes))
    cpu: dict[float, float] = defaultdict(float)
    rss: dict[float, float] = defaultdict(float)
    for samples in by_pid.values():
        samples = _regular(sorted(samples))
        # CPU counters tick in 10 ms steps: a rate over ~0.5 s reads as a line, not as 10% stairs.
        step = float(np.median(np.diff([t for t, _, _ in samples]))) if len(samples) > 1 else 1.0
        span = max(1, round(SMOOTH_S / step)) if step > 0 else 1
        for (t0, c0, _), (t1, c1, _) in zip(samples, samples[span:]):
            if t1 > t0:
                cpu[t1] += max(0.0, (c1 - c0) / (t1 - t0) * 100)
        for t, _, memory in samples:
            if math.isfinite(memory):
                rss[t] += memory / MIB_BYTES
    times = sorted(set(cpu) & set(rss))
    if len(times) < 2:
        return None
    start = min(rss)
    return (np.array(times) - start, np.array([cpu[t] for t in times]), np.array([rss[t] for t in times]))


def _regular(samples: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Drop a sample that follows its predecessor by under half the usual interval (the sampler's
    closing tick): a rate over a few milliseconds is noise."""
    if len(samples) < 3:
        return samples
    step = float(np.median(np.diff([t for t, _, _ in samples])))
    kept = [samples[0]]
    for sample in samples[1:]:
        if sample[0] - kept[-1][0] >= step / 2:
            kept.append(sample)
    return kept


@styled
def timeseries(run: Run, out_dir: Path) -> list[Path]:
    """CPU (% of one core) and RSS (MiB) of each setup over every trial, one column per workload."""
    series: dict[str, list[tuple[tuple[str, str], int, tuple]]] = {}
    for workload in run.workloads:
        for key in run.layer_keys:
            for trial in run.trials_at(key, workload):
                data = read_series(run, trial) if trial.files.processes else None
                if data is not None:
                    series.setdefault(workload, []).append((key, trial.repeat, data))
    if not series:
        return []
    workloads = list(series)
    figure = new_figure(7.5 * len(workloads) + 0.5, 10.5)
    axes = figure.subplots(2, len(workloads), squeeze=False, sharex="col")
    for column, workload in enumerate(workloads):
        cpu_ax, rss_ax = axes[0][column], axes[1][column]
        memory = []
        for key, repeat, (times, cpu, rss) in series[workload]:
            style = LINESTYLES[repeat % len(LINESTYLES)]
            cpu_ax.plot(times, cpu, color=colour(run, *key), linestyle=style, linewidth=2.2)
            rss_ax.plot(times, rss, color=colour(run, *key), linestyle=style, linewidth=2.2)
            memory.extend(rss)
        if spans_decades(memory):
            rss_ax.set_yscale("log")
        else:
            rss_ax.set_ylim(bottom=0, top=max(memory) * 1.15)  # from zero: a flat line must look flat
        plain_ticks(rss_ax.yaxis)
        cpu_ax.set_title(f"workload: {workload}")
        cpu_ax.set_ylim(bottom=0)
        rss_ax.set_ylabel("memory, RSS (MiB)" + (" (log)" if rss_ax.get_yscale() == "log" else ""))
        cpu_ax.set_ylabel(f"CPU (% of one core, over {SMOOTH_S:g} s)")
        rss_ax.set_xlabel("seconds since sampling began")
    handles = [Line2D([], [], color=colour(run, *key), linewidth=4, label=tick_label(*key, two_lines=False))
               for key in run.layer_keys if any(k == key for w in workloads for k, _, _ in series[w])]
    repeats = sorted({repeat for w in workloads for _, repeat, _ in series[w]})
    if len(repeats) > 1:
        handles += [Line2D([], [], color="black", linestyle=LINESTYLES[r % len(LINESTYLES)], linewidth=2,
                           label=f"repeat {r + 1}") for r in repeats[:len(LINESTYLES)]]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)
    figure.suptitle("CPU and memory of each setup over time (all its host processes; warm-up first, then the "
                    "measured window)", fontsize=16)
    return save(figure, out_dir, "timeseries")
