"""The compare chart: each later run's figure as a ratio to the first run's, per cell and metric."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter

from bench.plots._common import SETUP_COLOURS, SPARE_COLOURS, finite, new_figure, number, save, spans_decades, styled

METRICS = {"throughput_rps": "throughput", "latency_p99_ms": "p99 latency", "cpu_us_per_request": "CPU per request",
           "memory_rss_mb": "memory (RSS)", "startup_s": "start-up"}
RUN_MARKERS = ("o", "s", "D", "^", "v", "P")


@styled
def compare_chart(comparison: dict, out_dir: Path, name: str = "compare") -> list[Path]:
    """Forest plot: for every cell (setup, variant, workload), later runs ÷ first run with 95% intervals."""
    rows = [row for row in comparison["rows"] if row["metric"] in METRICS
            and any(entry["ratio"] for entry in row["runs"][1:])]
    if not rows:
        return []
    metrics = [m for m in METRICS if any(row["metric"] == m for row in rows)]
    lines = list(dict.fromkeys((row["setup"], row["variant"], row["workload"]) for row in rows))
    later = [run["run_id"] for run in comparison["runs"][1:]]
    figure = new_figure(3.6 * len(metrics) + 2.6, 2.2 + 0.6 * len(lines) * max(1, len(later)) ** 0.5)
    axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    setups = list(dict.fromkeys(line[0] for line in lines))
    for ax, metric in zip(axes, metrics):
        values = [1.0]
        for row in (r for r in rows if r["metric"] == metric):
            y = lines.index((row["setup"], row["variant"], row["workload"]))
            colour = SETUP_COLOURS.get(row["setup"]) or SPARE_COLOURS[setups.index(row["setup"]) % len(SPARE_COLOURS)]
            for index, entry in enumerate(row["runs"][1:]):
                ratio = entry["ratio"]
                if not ratio:
                    continue
                offset = (index - (len(later) - 1) / 2) * 0.22
                low, high = (ratio["low"], ratio["high"]) if finite(ratio["low"]) else (ratio["median"],) * 2
                values += [low, high, ratio["median"]]
                same = entry["verdict"] == "no measurable difference"
                ax.errorbar(ratio["median"], y + offset, xerr=[[ratio["median"] - low], [high - ratio["median"]]],
                            fmt=RUN_MARKERS[index % len(RUN_MARKERS)], color=colour, markersize=10, elinewidth=2.5,
                            capsize=5, markerfacecolor="white" if same else colour, markeredgewidth=2)
                ax.annotate(f"{number(ratio['median'])}×", (high, y + offset), xytext=(6, 0),
                            textcoords="offset points", va="center", fontsize=12, color=colour)
        ax.axvline(1.0, color="black", linewidth=1.5)
        if spans_decades(values):
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
        left, right = ax.get_xlim()
        ax.set_xlim(left, right * (1.6 if ax.get_xscale() == "log" else 1.08))
        ax.set_title(METRICS[metric])
        ax.set_xlabel("× first run")
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(range(len(lines)))
    axes[0].set_yticklabels([f"{s if v == 'default' else f'{s} {v}'} · {w}" for s, v, w in lines])
    axes[0].set_ylim(len(lines) - 0.5, -0.5)
    base = comparison["runs"][0]["run_id"]
    legend = [axes[0].plot([], [], RUN_MARKERS[i % len(RUN_MARKERS)], color="black", markersize=10,
                           label=run_id)[0] for i, run_id in enumerate(later)]
    figure.legend(handles=legend, loc="outside lower center", ncols=min(len(legend), 3), frameon=False,
                  title=f"each run ÷ the first run ({base}); hollow = no measurable difference")
    figure.suptitle("Compared runs: the same cells, relative to the first run (1× = unchanged)", fontsize=18)
    return save(figure, out_dir, name)
