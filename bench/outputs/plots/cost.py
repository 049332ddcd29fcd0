"""What a setup costs the host: CPU per request by role, and memory as a layer cake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.model import Cell, Run
from bench.outputs.plots._common import (colour_ticklabels, finite, new_figure, number, plain_ticks, save, styled,
                                         text_on, tick_label)
from bench.model.memory_cake import memory_slices, ordered_roles, role_of
from bench.vocabulary import shade

ZOOM_FACTOR = 6.0  # a bar this many times taller than the smallest gets the others a zoomed panel


@dataclass
class _Stack:
    """One bar: its segments bottom-up as (value, colour, hatch), and an optional marker value."""

    segments: list[tuple[float, str, str | None]]
    marker: float | None = None
    caption: str | None = None  # the words on top of the bar; default: its total

    @property
    def total(self) -> float:
        return sum(value for value, _, _ in self.segments)


def _draw_stacks(ax, run: Run, stacks: dict[tuple[str, str], _Stack], unit: str,
                 label_segments: bool = False) -> bool:
    keys = list(stacks)
    marker_drawn = False
    tallest = max(stack.total for stack in stacks.values())
    for index, key in enumerate(keys):
        bottom = 0.0
        for value, colour, hatch in stacks[key].segments:
            ax.bar(index, value, bottom=bottom, width=0.7, color=colour, hatch=hatch, edgecolor="white", linewidth=1)
            if label_segments and value > 0.07 * tallest and len(stacks[key].segments) > 1:
                ax.text(index, bottom + value / 2, number(value, unit), ha="center", va="center", fontsize=13,
                        color=text_on(colour))
            bottom += value
        ax.annotate(stacks[key].caption or number(bottom, unit), (index, bottom), xytext=(0, 6),
                    textcoords="offset points", ha="center", fontsize=14, fontweight="bold")
        marker = stacks[key].marker
        if finite(marker):
            ax.plot(index + 0.42, marker, marker="<", markersize=13, color="black", linestyle="none")
            marker_drawn = True
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([tick_label(*key) for key in keys])
    colour_ticklabels(ax.get_xticklabels(), run, keys)
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.margins(y=0.15)
    ax.grid(axis="x", visible=False)
    plain_ticks(ax.yaxis)
    return marker_drawn


def _stacked_chart(run: Run, per_workload: dict[str, dict[tuple[str, str], _Stack]], ylabel: str,
                   unit: str, label_segments: bool = False) -> tuple[object, bool]:
    """One column per workload; when one bar dwarfs the rest (a VM under TCG), a second row
    repeats the smaller bars on their own scale so their slices stay readable."""
    workloads = list(per_workload)
    zooms = {}
    for workload, stacks in per_workload.items():
        smallest = min(stack.total for stack in stacks.values())
        largest = max(stack.total for stack in stacks.values())
        if smallest > 0 and largest / smallest > ZOOM_FACTOR:
            small = {key: stack for key, stack in stacks.items() if stack.total * ZOOM_FACTOR / 2 < largest}
            if len(small) >= 2:
                zooms[workload] = small
    rows = 2 if zooms else 1
    figure = new_figure(max(8.0, (1.6 + 1.5 * len(run.layer_keys)) * len(workloads)), 5.2 * rows + 1.2)
    axes = figure.subplots(rows, len(workloads), squeeze=False)
    marker_drawn = False
    for column, workload in enumerate(workloads):
        ax = axes[0][column]
        marker_drawn |= _draw_stacks(ax, run, per_workload[workload], unit, label_segments)
        ax.set_title(f"workload: {workload}")
        ax.set_ylabel(ylabel)
        if rows == 2:
            zoom_ax = axes[1][column]
            if workload in zooms:
                _draw_stacks(zoom_ax, run, zooms[workload], unit, label_segments)
                zoom_ax.set_title(f"{workload}, zoomed in: the smaller bars on their own scale", fontsize=14,
                                  fontweight="normal")
                zoom_ax.set_ylabel(ylabel)
            else:
                zoom_ax.set_visible(False)
    return figure, marker_drawn


def _cpu_stack(run: Run, cell: Cell, seen: list[str]) -> _Stack | None:
    segments = []
    for key in ordered_roles(run, cell.roles):
        hue = role_of(run, key).colour
        figures = cell.roles[key]
        for value, hatch in ((figures.cpu_user_us_per_request, None), (figures.cpu_sys_us_per_request, "//")):
            if finite(value) and value > 0:
                segments.append((value, hue if hatch is None else shade(hue, 2), hatch))
                if key not in seen:
                    seen.append(key)
    return _Stack(segments, cell.inside.cpu_us_per_request if cell.inside else None) if segments else None


@styled
def cpu_per_request(run: Run, out_dir: Path) -> list[Path]:
    """Host CPU time per request, stacked by role (app, runtime, proxy, hypervisor), user solid, sys hatched."""
    per_workload: dict[str, dict[tuple[str, str], _Stack]] = {}
    seen_roles: list[str] = []
    for cell in run.cells:
        if cell.roles and cell.has_load and (stack := _cpu_stack(run, cell, seen_roles)) is not None:
            per_workload.setdefault(cell.workload, {})[cell.layer_key] = stack
    if not per_workload:
        return []
    figure, marker_drawn = _stacked_chart(run, per_workload, "CPU time per request (µs)", "µs")
    handles = [Patch(color=role_of(run, key).colour, label=role_of(run, key).label) for key in seen_roles]
    handles.append(Patch(facecolor="white", edgecolor="#555555", hatch="//", label="hatched: kernel (sys) time"))
    if marker_drawn:
        handles.append(Line2D([], [], marker="<", markersize=13, color="black", linestyle="none",
                              label="the app's own count, from inside"))
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    figure.suptitle("CPU per request on the host, by who spends it (lower is better)", fontsize=18)
    return save(figure, out_dir, "cpu_per_request")


FIXED_HATCH = "xx"  # the engine's daemons: paid once per host, drawn apart from the instance's own slices


def _cake(run: Run, cell: Cell, legend: dict[str, tuple[str, str, str | None]]) -> _Stack | None:
    """One bar of the cake: the instance's layers, then (hatched) its engine's fixed cost on top."""
    slices = memory_slices(run, cell)
    if not slices:
        return None
    segments = [(part.mb, part.colour, None) for part in slices.values()]
    legend.update({key: (part.label, part.colour, None) for key, part in slices.items()})
    fixed = cell.fixed
    for key, figures in (fixed.roles if fixed else {}).items():
        if finite(figures.pss_mb):
            role = role_of(run, key)
            segments.append((figures.pss_mb, shade(role.colour, 2), FIXED_HATCH))
            legend[f"fixed.{key}"] = (role.label, shade(role.colour, 2), FIXED_HATCH)
    instance = sum(part.mb for part in slices.values())
    caption = f"{number(instance, 'MiB')}\n+{number(fixed.pss_mb)} once" if fixed and fixed.pss_mb else None
    return _Stack(segments, caption=caption)


@styled
def memory_layers(run: Run, out_dir: Path) -> list[Path]:
    """The layer cake: each setup's memory (PSS) stacked by layer, so each layer's cost is one slice;
    an engine's daemons (paid once per host, however many instances run) hatched on top."""
    per_workload: dict[str, dict[tuple[str, str], _Stack]] = {}
    legend: dict[str, tuple[str, str, str | None]] = {}
    for cell in run.cells:
        stack = _cake(run, cell, legend) if cell.memory_per_instance_mb is None else None  # density: own chart
        if stack is not None:
            per_workload.setdefault(cell.workload, {})[cell.layer_key] = stack
    if not per_workload:
        return []
    figure, _ = _stacked_chart(run, per_workload, "memory, PSS (MiB)", "MiB", label_segments=True)
    handles = [Patch(facecolor=hue, hatch=hatch, edgecolor="white", label=name) for name, hue, hatch in legend.values()]
    columns = 2 if any(len(name) > 32 for name, _, _ in legend.values()) else 3
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), columns), frameon=False)
    figure.suptitle("The layer cake: memory each layer adds\n(PSS on the host: shared pages split among the "
                    "processes that map them; lower is better)" + ("\nhatched: the engine's daemons, paid once "
                    "per host however many instances run" if any(key.startswith("fixed.") for key in legend) else ""),
                    fontsize=17)
    return save(figure, out_dir, "memory_layers")
