"""The headline chart: what each layer costs, as a ratio to the baseline, with its interval."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter

from bench.model import STARTUP_WORKLOAD, Overhead, Run
from bench.outputs.plots._common import colour, finite, new_figure, number, save, spans_decades, styled, tick_label
from bench.figures import HEADLINE_METRICS, metric
from bench.vocabulary import percent

WORSE_TINT = "#fdeeee"
Line = tuple[str, tuple[str, str]]  # (workload, layer key)


def _times(value: float, _position) -> str:
    """Log-axis tick as a plain factor: 0.1×, 1×, 10×."""
    return f"{value:g}×"


def _lines(run: Run, rows: list[Overhead]) -> list[Line | None]:
    """One line per (workload, setup variant); workloads are groups separated by a gap (None)."""
    keys = [key for key in run.layer_keys if key.setup != run.baseline]
    pooled = [STARTUP_WORKLOAD] if any(row.workload == STARTUP_WORKLOAD for row in rows) else []
    lines: list[Line | None] = []
    for workload in [*run.workloads, *pooled]:
        present = [key for key in keys if any((r.layer_key, r.workload) == (key, workload) for r in rows)]
        if present:
            if lines:
                lines.append(None)
            lines.extend((workload, key) for key in present)
    return lines


def _panel(ax, run: Run, rows: list[Overhead], position: dict, metric_key: str) -> None:
    meaning = metric(metric_key)
    values = [v for row in rows for v in (row.ratio.low, row.ratio.high, row.ratio.median)]
    log = spans_decades(values + [1.0])
    for row in rows:
        line = (row.workload, row.layer_key)
        if line not in position:
            continue
        ratio, y, hue = row.ratio, position[line], colour(run, *row.layer_key)
        low, high = (ratio.low, ratio.high) if finite(ratio.low) else (ratio.median,) * 2
        undecided = row.state == "undecided"
        bars = ax.errorbar(ratio.median, y, xerr=[[ratio.median - low], [high - ratio.median]], fmt="o",
                           color=hue, markersize=12, elinewidth=3, capsize=6, capthick=2, markeredgewidth=2.5,
                           markerfacecolor="white" if row.same or undecided else hue)
        if undecided:  # a dashed whisker: the interval does not decide
            bars[-1][0].set_linestyle((0, (2, 2)))
        ax.annotate(f"{number(ratio.median)}×" + (" ?" if undecided else ""), (high, y), xytext=(8, 0),
                    textcoords="offset points", va="center", fontsize=13, color=hue)
    ax.axvline(1.0, color="black", linewidth=1.5)
    lowest = min([v for v in values if finite(v) and v > 0] + [1.0])
    highest = max([v for v in values if finite(v)] + [1.0])
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(_times))
        ax.set_xlim(lowest / 1.6, highest * 4.0)
    else:
        span = max(highest - lowest, 0.2)
        ax.set_xlim(max(0.0, lowest - 0.15 * span), highest + 0.45 * span)
    left, right = ax.get_xlim()
    worse = "lower" if meaning.higher_is_better else "higher"
    ax.axvspan(*((left, 1.0) if meaning.higher_is_better else (1.0, right)), color=WORSE_TINT, zorder=0)
    ax.set_xlim(left, right)
    ax.set_title(f"{meaning.label}\n({worse} is worse)")
    ax.set_xlabel(f"× {run.baseline}" + (" (log scale)" if log else ""))
    ax.grid(axis="y", visible=False)


@styled
def headline(run: Run, out_dir: Path) -> list[Path]:
    """Overhead of each setup variant relative to the baseline, per metric: ratio with its 95% interval."""
    rows = [row for row in run.overhead if row.metric in HEADLINE_METRICS and finite(row.ratio.median)]
    if not rows:
        return []
    metrics = [m for m in HEADLINE_METRICS if any(row.metric == m for row in rows)]
    lines = _lines(run, rows)
    position = {line: index for index, line in enumerate(lines) if line is not None}
    figure = new_figure(3.6 * len(metrics) + 2.2, 1.6 + 0.62 * len(lines))
    axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    for ax, metric_key in zip(axes, metrics):
        _panel(ax, run, [row for row in rows if row.metric == metric_key], position, metric_key)
    axes[0].set_yticks(range(len(lines)))
    axes[0].set_yticklabels([f"{tick_label(*line[1], two_lines=False)}  ·  {line[0]}" if line else ""
                             for line in lines])
    for text, line in zip(axes[0].get_yticklabels(), lines):
        if line:
            text.set_color(colour(run, *line[1]))
            text.set_fontweight("bold")
    axes[0].set_ylim(len(lines) - 0.5, -0.5)
    axes[0].tick_params(axis="y", length=0)
    figure.suptitle(f"What each layer costs, relative to the {run.baseline} process (1× = same as {run.baseline})",
                    fontsize=18)
    figure.supxlabel(f"dot = ratio (paired over rounds), whisker = 95% interval, hollow dot = same (within "
                     f"±{percent(run.min_effect)}), dashed with ? = undecided (run more rounds), shaded side = worse "
                     f"than the baseline", fontsize=13, color="#444444")
    return save(figure, out_dir, "headline")
