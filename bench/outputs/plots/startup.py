"""Start-up: where the time from launch to the first HTTP 200 goes, and how much it varies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Patch

from bench.model import LayerKey, Run
from bench.outputs.plots._common import (colour, colour_ticklabels, finite, new_figure, number, plain_ticks, save,
                                 spans_decades, styled, text_on, tick_label)
from bench.vocabulary import phase_label

# The last phase is common to every setup; it gets the same colour everywhere.
PHASE_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442", "#999999")
FINAL_PHASE = "first_200_s"
FINAL_COLOUR = "#bbbbbb"


def median_phases(run: Run, key: LayerKey) -> dict[str, float]:
    """Median seconds per start-up phase over every fresh start of one setup variant, in order."""
    trials = [t for t in run.trials_at(key) if t.startup_phases_s]
    names = list(dict.fromkeys(name for t in trials for name in t.startup_phases_s))
    phases = {}
    for name in names:
        values = [t.startup_phases_s[name] for t in trials if finite(t.startup_phases_s.get(name))]
        if values:
            phases[name] = float(np.median(values))
    return phases


ZOOM_FACTOR = 6.0  # when the slowest start is this many times the fastest, the fast ones get their own panel


def _phase_bars(ax, run: Run, data: dict, colours: dict[str, str]) -> None:
    keys = list(data)
    longest = max(sum(phases.values()) for phases in data.values())
    for index, key in enumerate(keys):
        left = 0.0
        for name, seconds in data[key].items():
            hue = colours.get(name, "#999999")
            ax.barh(index, seconds, left=left, height=0.6, color=hue, edgecolor="white")
            if seconds > 0.12 * longest:
                ax.text(left + seconds / 2, index, f"{phase_label(name, True)}\n{number(seconds, 's')}",
                        ha="center", va="center", fontsize=12, color=text_on(hue))
            left += seconds
        ax.annotate(number(left, "s"), (left, index), xytext=(8, 0), textcoords="offset points", va="center",
                    fontsize=14, fontweight="bold")
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels([tick_label(*key, two_lines=False) for key in keys])
    colour_ticklabels(ax.get_yticklabels(), run, keys)
    ax.set_ylim(len(keys) - 0.5, -0.5)
    ax.set_xlim(0, longest * 1.15)
    ax.grid(axis="y", visible=False)


@styled
def startup_phases(run: Run, out_dir: Path) -> list[Path]:
    """Horizontal stacked bars: each setup's start-up split into its phases (median over fresh starts)."""
    data = {key: median_phases(run, key) for key in run.layer_keys}
    data = {key: phases for key, phases in data.items() if phases and sum(phases.values()) > 0}
    if not data:
        return []
    names = list(dict.fromkeys(name for phases in data.values() for name in phases if name != FINAL_PHASE))
    colours = {name: PHASE_COLOURS[index % len(PHASE_COLOURS)] for index, name in enumerate(names)}
    colours[FINAL_PHASE] = FINAL_COLOUR
    totals = {key: sum(phases.values()) for key, phases in data.items()}
    longest = max(totals.values())
    fast = {key: data[key] for key, total in totals.items() if total * ZOOM_FACTOR < longest}
    rows = [data] + ([fast] if fast else [])
    figure = new_figure(14, 1.6 + sum(1.0 + 0.95 * len(row) for row in rows))
    axes = figure.subplots(len(rows), 1, squeeze=False, height_ratios=[len(row) + 0.6 for row in rows])[:, 0]
    for ax, row in zip(axes, rows):
        _phase_bars(ax, run, row, colours)
    if fast:
        axes[1].set_title(f"zoomed in: the starts under {number(longest / ZOOM_FACTOR, 's')}", fontsize=14,
                          fontweight="normal")
    axes[-1].set_xlabel("seconds from launch to the first HTTP 200 (median over fresh starts)")
    used = list(dict.fromkeys(name for phases in data.values() for name in phases))
    ordered = [name for name in used if name != FINAL_PHASE] + [name for name in used if name == FINAL_PHASE]
    figure.legend(handles=[Patch(color=colours[name], label=phase_label(name)) for name in ordered],
                  loc="outside lower center", ncols=min(len(ordered), 5), frameon=False)
    figure.suptitle("Start-up: where the time goes, launch to first HTTP 200 (shorter is better)", fontsize=18)
    return save(figure, out_dir, "startup_phases")


@styled
def startup_distribution(run: Run, out_dir: Path) -> list[Path]:
    """Every fresh start's time to first 200, as points over a box per setup variant (log when it spans decades)."""
    data = {key: [t.startup_s for t in run.trials_at(key) if finite(t.startup_s)] for key in run.layer_keys}
    data = {key: values for key, values in data.items() if values}
    if not data:
        return []
    keys = list(data)
    figure = new_figure(14, 2.2 + 1.0 * len(keys))
    ax = figure.subplots()
    rng = np.random.default_rng(0)  # jitter only; fixed so the picture is reproducible
    for index, key in enumerate(keys):
        values = np.asarray(data[key])
        if values.size >= 5:  # a box of fewer points says less than the points themselves
            ax.boxplot([values], positions=[index], orientation="horizontal", widths=0.55, showfliers=False,
                       medianprops={"color": "black", "linewidth": 2.5})
        else:
            ax.plot([np.median(values)] * 2, [index - 0.3, index + 0.3], color="black", linewidth=2.5)
        ax.scatter(values, index + rng.uniform(-0.18, 0.18, size=values.size), s=70, color=colour(run, *key),
                   edgecolor="white", zorder=3)
        ax.annotate(f"median {number(float(np.median(values)), 's')}  (n={values.size})", (values.max(), index),
                    xytext=(12, 0), textcoords="offset points", va="center", fontsize=13)
    if spans_decades([v for values in data.values() for v in values]):
        ax.set_xscale("log")
        plain_ticks(ax.xaxis)
        ax.set_xlabel("seconds from launch to the first HTTP 200 (log scale)")
    else:
        ax.set_xlabel("seconds from launch to the first HTTP 200")
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels([tick_label(*key, two_lines=False) for key in keys])
    colour_ticklabels(ax.get_yticklabels(), run, keys)
    ax.set_ylim(len(keys) - 0.5, -0.5)
    left, right = ax.get_xlim()
    ax.set_xlim(left, right * (3 if ax.get_xscale() == "log" else 1.25))
    ax.grid(axis="y", visible=False)
    figure.suptitle("Start-up time of every fresh start", fontsize=16)
    ax.set_title("one dot per start; black line = median; box = middle half (5 or more starts)", fontsize=12)
    return save(figure, out_dir, "startup_distribution")
