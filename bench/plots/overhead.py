"""The headline chart: what each layer costs, as a ratio to the bare process, with its interval."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter

from bench.plots._common import LoadedRun, finite, new_figure, number, save, spans_decades, styled

# Metric in the summary's overhead rows -> (panel title, which way is worse).
HEADLINE_METRICS = {
    "throughput_rps": ("throughput", "lower"),
    "latency_p99_ms": ("p99 latency", "higher"),
    "cpu_us_per_request": ("CPU per request", "higher"),
    "memory_rss_mb": ("memory (RSS)", "higher"),
    "startup_s": ("start-up time", "higher"),
}
WORSE_TINT = "#fdeeee"


def _times(value: float, _position) -> str:
    """Log-axis tick as a plain factor: 0.1×, 1×, 10×."""
    return f"{value:g}×"


@styled
def headline(run: LoadedRun, out_dir: Path) -> list[Path]:
    """Overhead of each setup/variant relative to bare, per metric: ratio with its 95% interval."""
    rows = [row for row in run.summary["overhead"] if row["metric"] in HEADLINE_METRICS
            and finite(row["ratio"]["median"])]
    if not rows:
        return []
    metrics = [m for m in HEADLINE_METRICS if any(row["metric"] == m for row in rows)]
    keys = [key for key in run.cells if key[0] != "bare"]
    # One line per (workload, setup variant); workloads are groups separated by a gap.
    lines: list[tuple[str, tuple[str, str]] | None] = []
    # Start-up rows belong to a setup variant, not a workload: the summary labels them "start-up".
    pooled = ["start-up"] if any(row["workload"] == "start-up" for row in rows) else []
    for workload in [*run.workloads, *pooled]:
        present = [key for key in keys if any((r["setup"], r["variant"], r["workload"]) == (*key, workload)
                                              for r in rows)]
        if present:
            if lines:
                lines.append(None)
            lines.extend((workload, key) for key in present)
    position = {line: index for index, line in enumerate(lines) if line is not None}

    figure = new_figure(3.6 * len(metrics) + 2.2, 1.6 + 0.62 * len(lines))
    axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        title, worse = HEADLINE_METRICS[metric]
        mine = [row for row in rows if row["metric"] == metric]
        values = [v for row in mine for v in (row["ratio"]["low"], row["ratio"]["high"], row["ratio"]["median"])]
        log = spans_decades(values + [1.0])
        for row in mine:
            line = (row["workload"], (row["setup"], row["variant"]))
            if line not in position:
                continue
            ratio = row["ratio"]
            y = position[line]
            colour = run.colour(row["setup"], row["variant"])
            low, high = (ratio["low"], ratio["high"]) if finite(ratio["low"]) else (ratio["median"],) * 2
            same = row["verdict"] == "no measurable difference"
            ax.errorbar(ratio["median"], y, xerr=[[ratio["median"] - low], [high - ratio["median"]]], fmt="o",
                        color=colour, markersize=12, elinewidth=3, capsize=6, capthick=2, markeredgewidth=2.5,
                        markerfacecolor="white" if same else colour)
            ax.annotate(f"{number(ratio['median'])}×", (high, y), xytext=(8, 0),
                        textcoords="offset points", va="center", fontsize=13, color=colour)
        ax.axvline(1.0, color="black", linewidth=1.5)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(_times))
        lowest = min([v for v in values if finite(v) and v > 0] + [1.0])
        highest = max([v for v in values if finite(v)] + [1.0])
        if log:
            ax.set_xlim(lowest / 1.6, highest * 4.0)
        else:
            span = max(highest - lowest, 0.2)
            ax.set_xlim(max(0.0, lowest - 0.15 * span), highest + 0.45 * span)
        left, right = ax.get_xlim()
        if worse == "lower":
            ax.axvspan(left, 1.0, color=WORSE_TINT, zorder=0)
        else:
            ax.axvspan(1.0, right, color=WORSE_TINT, zorder=0)
        ax.set_xlim(left, right)
        ax.set_title(f"{title}\n({worse} is worse)")
        ax.set_xlabel("× bare" + (" (log scale)" if log else ""))
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(range(len(lines)))
    axes[0].set_yticklabels([f"{run.label(*line[1], sep=' ')}  ·  {line[0]}" if line else "" for line in lines])
    for label, line in zip(axes[0].get_yticklabels(), lines):
        if line:
            label.set_color(run.colour(*line[1]))
            label.set_fontweight("bold")
    axes[0].set_ylim(len(lines) - 0.5, -0.5)
    axes[0].tick_params(axis="y", length=0)
    figure.suptitle("What each layer costs, relative to the bare process (1× = same as bare)", fontsize=18)
    figure.supxlabel("dot = median ratio, whisker = 95% interval, hollow dot = no measurable difference, "
                     "shaded side = worse than bare", fontsize=13, color="#444444")
    return save(figure, out_dir, "headline")
