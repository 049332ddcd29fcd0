"""The same layer under each app, side by side: its ratio to the same app's baseline."""

from __future__ import annotations

from pathlib import Path

from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from bench.model import Run
from bench.outputs.plots._common import colour, finite, new_figure, number, save, spans_decades, styled
from bench.figures import metric

MARKERS = ("o", "s", "D", "^")  # one per app, in the run's app order
PANELS = ("throughput_rps", "cpu_us_per_request")


def _estimate(entry, metric_key: str):
    return entry.throughput if metric_key == "throughput_rps" else entry.cpu


def _panel(ax, run: Run, rows, metric_key: str) -> None:
    spacing = 0.8 / max(1, len(run.apps))
    values = []
    for y, row in enumerate(rows):
        hue = colour(run, row.setup, row.variant)
        for entry in row.entries:
            estimate = _estimate(entry, metric_key)
            if estimate is None or not finite(estimate.median):
                continue
            index = run.apps.index(entry.app) if entry.app in run.apps else 0
            offset = y + (index - (len(run.apps) - 1) / 2) * spacing
            low, high = (estimate.low, estimate.high) if finite(estimate.low) else (estimate.median,) * 2
            values += [low, high, estimate.median]
            ax.errorbar(estimate.median, offset, xerr=[[estimate.median - low], [high - estimate.median]],
                        fmt=MARKERS[index % len(MARKERS)], color=hue, markersize=11, elinewidth=3, capsize=5)
            ax.annotate(f"{number(estimate.median)}× {entry.app}", (high, offset), xytext=(8, 0),
                        textcoords="offset points", va="center", fontsize=12, color=hue)
    ax.axvline(1.0, color="black", linewidth=1.5)
    if spans_decades(values + [1.0]):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
    highest = max([v for v in values if finite(v)] + [1.0])
    ax.set_xlim(right=highest * (3.0 if ax.get_xscale() == "log" else 1.35))
    meaning = metric(metric_key)
    ax.set_title(f"{meaning.label} × {run.baseline}\n({'lower' if meaning.higher_is_better else 'higher'} is worse)")
    ax.grid(axis="y", visible=False)


@styled
def by_app(run: Run, out_dir: Path) -> list[Path]:
    """For a run of several apps: per layer (and workload), each app's ratio to its own baseline."""
    rows = run.by_app
    if not rows:
        return []
    figure = new_figure(7.0 * len(PANELS) + 2.5, 1.8 + 0.9 * len(rows) * max(1, len(run.apps)) / 2)
    axes = figure.subplots(1, len(PANELS), sharey=True, squeeze=False)[0]
    for ax, metric_key in zip(axes, PANELS):
        _panel(ax, run, rows, metric_key)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels([f"{row.label}  ·  {row.workload}" for row in rows])
    for text, row in zip(axes[0].get_yticklabels(), rows):
        text.set_color(colour(run, row.setup, row.variant))
        text.set_fontweight("bold")
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    handles = [Line2D([], [], marker=MARKERS[i % len(MARKERS)], color="#444444", linestyle="none", markersize=11,
                      label=app) for i, app in enumerate(run.apps)]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    figure.suptitle(f"The same layer costs each app a different share (1× = the same app as {run.baseline})",
                    fontsize=17)
    return save(figure, out_dir, "by_app")
