"""Charts of the load: throughput, latency percentiles, and the latency distribution (CDF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FixedLocator, NullLocator

from bench.model import Run
from bench.outputs.plots._common import (colour, colour_ticklabels, finite, hatch, line_style, new_figure, number, plain_ticks,
                                 save, spans_decades, styled, tick_label)
from bench.vocabulary import PERCENTILE_LABELS as PERCENTILE_NAMES


def _load_workloads(run: Run) -> list[str]:
    return [w for w in run.workloads if any(cell.has_load for cell in run.cells if cell.workload == w)]


@styled
def throughput(run: Run, out_dir: Path) -> list[Path]:
    """Requests per second per setup, one panel per workload: median of repeats with its 95% interval."""
    workloads = _load_workloads(run)
    if not workloads:
        return []
    figure = new_figure((2.4 + 1.8 * len(run.layer_keys)) * min(len(workloads), 2),  # a column fits "scratch=overlay)"
                        5.6 * ((len(workloads) + 1) // 2))
    axes = figure.subplots((len(workloads) + 1) // 2, min(len(workloads), 2), squeeze=False).ravel()
    for ax, workload in zip(axes, workloads):
        estimates = {key: cell.estimate("throughput_rps") for key in run.layer_keys
                     if (cell := run.cell_at(key, workload)) is not None and cell.has_load}
        keys = [key for key, estimate in estimates.items() if estimate is not None]
        for index, key in enumerate(keys):
            estimate = estimates[key]
            median = estimate.median
            error = [[median - estimate.low], [estimate.high - median]] if finite(estimate.low) else None
            ax.bar(index, median, color=colour(run, *key), width=0.7, hatch=hatch(run, key.app), edgecolor="white")
            ax.errorbar(index, median, yerr=error, color="black", capsize=8, elinewidth=2, capthick=2)
            ax.annotate(number(median), (index, estimate.high if finite(estimate.high) else median),
                        xytext=(0, 6), textcoords="offset points", ha="center", fontsize=14, fontweight="bold")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([tick_label(*key) for key in keys])
        colour_ticklabels(ax.get_xticklabels(), run, keys)
        ax.set_title(f"workload: {workload}")
        ax.set_ylabel("requests per second")
        plain_ticks(ax.yaxis)
        ax.margins(y=0.15)
        ax.grid(axis="x", visible=False)
    for ax in axes[len(workloads):]:
        ax.set_visible(False)
    figure.suptitle("Throughput (higher is better; bar = median of repeats, whisker = 95% interval)", fontsize=16)
    return save(figure, out_dir, "throughput")


@styled
def latency_percentiles(run: Run, out_dir: Path) -> list[Path]:
    """Latency at p50/p90/p99/p99.9 per setup, one panel per workload, log scale when it spans decades."""
    workloads = [w for w in run.workloads if any(cell.latency_ms for cell in run.cells if cell.workload == w)]
    if not workloads:
        return []
    figure = new_figure(7.2 * min(len(workloads), 2) + 1, 5.8 * ((len(workloads) + 1) // 2))
    axes = figure.subplots((len(workloads) + 1) // 2, min(len(workloads), 2), squeeze=False).ravel()
    names = list(PERCENTILE_NAMES)
    for ax, workload in zip(axes, workloads):
        values = []
        for key in run.layer_keys:
            cell = run.cell_at(key, workload)
            if cell is None or not cell.latency_ms:
                continue
            points = [cell.latency_ms.named(name) for name in names]
            values += points
            ax.plot(range(len(names)), points, marker="o", markersize=9, linewidth=3, color=colour(run, *key),
                    linestyle=line_style(run, key.app), label=tick_label(*key, two_lines=False))
        if spans_decades(values):
            ax.set_yscale("log")
        plain_ticks(ax.yaxis)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([PERCENTILE_NAMES[name] for name in names])
        ax.set_xlabel("percentile (p99 = 1 request in 100 is slower than this)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"workload: {workload}")
        ax.legend(loc="upper left", frameon=False)
    for ax in axes[len(workloads):]:
        ax.set_visible(False)
    figure.suptitle("Latency percentiles (lower is better; median over repeats)", fontsize=16)
    return save(figure, out_dir, "latency_percentiles")


def _cdf_points(sorted_ms: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(share, latency) along the empirical CDF; thinned to about `points` for big arrays, denser
    in the tail, so a 100k-request trial does not make a 10 MiB SVG."""
    size = sorted_ms.size
    if size <= points:
        return (np.arange(1, size + 1) - 0.5) / size, sorted_ms
    low, high = 0.5 / size, 1 - 0.5 / size
    share = np.unique(np.concatenate([np.linspace(low, 0.9, points // 4),
                                      1 - np.geomspace(0.1, 1 - high, points - points // 4)]))
    return share, np.quantile(sorted_ms, share)


@styled
def latency_cdf(run: Run, out_dir: Path) -> list[Path]:
    """Share of requests answered within x ms, from the raw latencies of every repeat, on log axes."""
    samples: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    for workload in run.workloads:
        for key in run.layer_keys:
            arrays = [run.latencies_ms(t) for t in run.trials_at(key, workload) if t.files.latency_ms]
            data = np.concatenate(arrays) if arrays else np.array([])
            data = data[np.isfinite(data) & (data > 0)]
            if data.size:
                samples.setdefault(workload, {})[key] = np.sort(data)
    if not samples:
        return []
    workloads = list(samples)
    figure = new_figure(7.2 * min(len(workloads), 2) + 1, 5.8 * ((len(workloads) + 1) // 2))
    axes = figure.subplots((len(workloads) + 1) // 2, min(len(workloads), 2), squeeze=False).ravel()
    levels = [0.5, 0.9, 0.99, 0.999]
    for ax, workload in zip(axes, workloads):
        top = 0.5
        for key, data in samples[workload].items():
            # The share of requests up to each latency; the logit axis stretches the tail.
            share, data = _cdf_points(data)
            ax.plot(data, share, linewidth=3, color=colour(run, *key), linestyle=line_style(run, key.app),
                    label=tick_label(*key, two_lines=False))
            top = max(top, share[-1])
        ax.set_xscale("log")
        plain_ticks(ax.xaxis)
        ax.set_yscale("logit")
        ax.set_ylim(0.05, min(0.9995, max(0.995, top)))
        ax.yaxis.set_major_locator(FixedLocator([0.1, 0.5, 0.9, 0.99, 0.999]))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_yticklabels(["10%", "50%", "90%", "99%", "99.9%"])
        for level in levels:
            ax.axhline(level, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("requests answered within x")
        ax.set_title(f"workload: {workload}")
    for ax in axes[len(workloads):]:
        ax.set_visible(False)
    shown = {}
    for ax in axes[:len(workloads)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            shown.setdefault(label, handle)
    figure.legend(shown.values(), shown.keys(), loc="outside lower center", ncols=min(len(shown), 6), frameon=False)
    figure.suptitle("Latency distribution (left and steep is better; the tail is at the top)", fontsize=16)
    return save(figure, out_dir, "latency_cdf")
