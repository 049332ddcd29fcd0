"""The compare chart: each later run's figure as a ratio to the first run's, per cell and metric."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter

from bench.outputs.plots._common import finite, new_figure, number, save, spans_decades, styled
from bench.figures import HEADLINE_METRICS, metric
from bench.vocabulary import SPARE_COLOURS, label

RUN_MARKERS = ("o", "s", "D", "^", "v", "P")


def _hue(comparison, setup: str, setups: list[str]) -> str:
    return comparison.colour(setup) or SPARE_COLOURS[setups.index(setup) % len(SPARE_COLOURS)]


def _panel(ax, comparison, rows, lines: list[tuple], later: int) -> None:
    values = [1.0]
    setups = list(dict.fromkeys(line[0] for line in lines))
    for row in rows:
        y = lines.index((row.setup, row.variant, row.workload, row.app if row.show_app else None))
        hue = _hue(comparison, row.setup, setups)
        for index, entry in enumerate(row.entries[1:]):
            ratio = entry.ratio
            if ratio is None:
                continue
            offset = (index - (later - 1) / 2) * 0.22
            low, high = (ratio.low, ratio.high) if finite(ratio.low) else (ratio.median,) * 2
            values += [low, high, ratio.median]
            ax.errorbar(ratio.median, y + offset, xerr=[[ratio.median - low], [high - ratio.median]],
                        fmt=RUN_MARKERS[index % len(RUN_MARKERS)], color=hue, markersize=10, elinewidth=2.5,
                        capsize=5, markerfacecolor="white" if entry.state in ("same", "undecided") else hue,
                        markeredgewidth=2)
            ax.annotate(f"{number(ratio.median)}×", (high, y + offset), xytext=(6, 0), textcoords="offset points",
                        va="center", fontsize=12, color=hue)
    ax.axvline(1.0, color="black", linewidth=1.5)
    if spans_decades(values):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
    left, right = ax.get_xlim()
    ax.set_xlim(left, right * (1.6 if ax.get_xscale() == "log" else 1.08))
    ax.set_xlabel("× first run")
    ax.grid(axis="y", visible=False)


@styled
def compare_chart(comparison, out_dir: Path, name: str = "compare") -> list[Path]:
    """Forest plot: for every cell (setup, variant, workload), later runs ÷ first run with 95% intervals."""
    rows = [row for row in comparison.rows if row.metric in HEADLINE_METRICS
            and any(entry.ratio for entry in row.entries[1:])]
    if not rows:
        return []
    metrics = [m for m in HEADLINE_METRICS if any(row.metric == m for row in rows)]
    lines = list(dict.fromkeys((row.setup, row.variant, row.workload, row.app if row.show_app else None)
                               for row in rows))
    later = comparison.titles[1:]
    figure = new_figure(3.6 * len(metrics) + 2.6, 2.2 + 0.6 * len(lines) * max(1, len(later)) ** 0.5)
    axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    for ax, metric_key in zip(axes, metrics):
        _panel(ax, comparison, [r for r in rows if r.metric == metric_key], lines, len(later))
        ax.set_title(metric(metric_key).label)
    axes[0].set_yticks(range(len(lines)))
    axes[0].set_yticklabels([f"{label(s, v, a)} · {w}" for s, v, w, a in lines])
    axes[0].set_ylim(len(lines) - 0.5, -0.5)
    legend = [axes[0].plot([], [], RUN_MARKERS[i % len(RUN_MARKERS)], color="black", markersize=10,
                           label=run_id)[0] for i, run_id in enumerate(later)]
    figure.legend(handles=legend, loc="outside lower center", ncols=min(len(legend), 3), frameon=False,
                  title=f"each run ÷ the first run ({comparison.titles[0]}); hollow = no measurable difference")
    figure.suptitle("Compared runs: the same cells, relative to the first run (1× = unchanged)", fontsize=18)
    return save(figure, out_dir, name)
