"""Density: memory per instance as identical copies are added side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.lines import Line2D

from bench.model import PerInstanceMemory, Run
from bench.outputs.plots._common import colour, finite, new_figure, plain_ticks, save, styled, tick_label

# (figure, line style, marker, legend words): what each line means, in the order a class reads them.
SERIES = (
    ("uss", "-", "o", "USS ÷ N: what one more instance costs"),
    ("pss", "--", "s", "PSS ÷ N: its fair share of shared pages"),
    ("rss", ":", "^", "RSS ÷ N: upper bound (shared pages in every copy)"),
)


FIXED_WORDS = "engine daemons ÷ N: the fixed cost, shared by all"


@dataclass(frozen=True)
class _Point:
    """One instance count of a layer: memory per instance, and its engine's fixed cost shared by the N."""

    instances: int
    figures: PerInstanceMemory
    fixed_mb: float | None


def _series(run: Run) -> dict[tuple[str, str], list[_Point]]:
    found: dict[tuple[str, str], list[_Point]] = {}
    for cell in run.cells:
        figures = cell.memory_per_instance_mb
        if figures is not None and cell.instances:
            fixed = cell.fixed.pss_mb if cell.fixed is not None else None
            found.setdefault(cell.layer_key, []).append(
                _Point(cell.instances, figures, fixed / cell.instances if finite(fixed) else None))
    return {key: sorted(points, key=lambda point: point.instances) for key, points in found.items()}


@styled
def density(run: Run, out_dir: Path) -> list[Path]:
    """Per setup variant: memory per instance against the number of instances (one panel each, own scale)."""
    series = _series(run)
    if not series:
        return []
    figure = new_figure(max(12.5, 5.4 * len(series) + 0.6), 6.8)
    axes = figure.subplots(1, len(series), squeeze=False)[0]  # own scales: a VM's hundreds of MiB flatten the rest
    any_fixed = False
    for ax, (key, points) in zip(axes, series.items()):
        counts = [point.instances for point in points]
        hue = colour(run, *key)
        for part, style, marker, _ in SERIES:
            values = [getattr(point.figures, part) for point in points]
            ax.plot(counts, [v if finite(v) else float("nan") for v in values], linestyle=style, marker=marker,
                    color=hue, linewidth=3, markersize=10)
        drops = [(point.instances, point.figures.available_drop) for point in points
                 if finite(point.figures.available_drop)]
        if drops:
            ax.scatter(*zip(*drops), marker="X", s=140, color="black", zorder=3)
        fixed = [(point.instances, point.fixed_mb) for point in points if finite(point.fixed_mb)]
        if fixed:  # the daemons do not grow with N: their share per instance falls as 1/N
            ax.plot(*zip(*fixed), linestyle="-.", marker="D", color="#888888", linewidth=2.5, markersize=8)
            any_fixed = True
        ax.set_xticks(counts)
        ax.set_xlabel("instances side by side")
        ax.set_ylabel("memory per instance (MiB)")
        ax.set_ylim(bottom=0)
        ax.margins(x=0.15, y=0.15)
        plain_ticks(ax.yaxis)
        ax.set_title(tick_label(*key, two_lines=False), color=hue)
    handles = [Line2D([], [], color="#333333", linestyle=style, marker=marker, linewidth=3, markersize=10, label=words)
               for _, style, marker, words in SERIES]
    handles.append(Line2D([], [], color="black", marker="X", linestyle="none", markersize=12,
                          label="host MemAvailable drop ÷ N (cross-check)"))
    if any_fixed:
        handles.append(Line2D([], [], color="#888888", linestyle="-.", marker="D", linewidth=2.5, markersize=8,
                              label=FIXED_WORDS))
    figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    figure.suptitle("Density: memory per instance as copies are added (lower is better)", fontsize=18)
    return save(figure, out_dir, "density")
