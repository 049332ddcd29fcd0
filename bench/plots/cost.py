"""What a setup costs the host: CPU per request by role, and memory as a layer cake."""

from __future__ import annotations

from pathlib import Path

from dataclasses import dataclass

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.plots._common import (ROLE_COLOURS, ROLE_NAMES, ROLE_ORDER, LoadedRun, colour_ticklabels, finite,
                                 new_figure, number, plain_ticks, save, shade, styled)

LAYER_NAMES = {
    "app": "the app",
    "runtime": "container runtime (containerd shim)",
    "proxy": "docker-proxy (published port)",
    "guest": "guest kernel + virtual devices (QEMU)",
    "hypervisor": "QEMU, not split (no view from inside)",
}
LAYER_ORDER = ("app", "runtime", "proxy", "guest", "hypervisor")


DARK = {ROLE_COLOURS["app"], ROLE_COLOURS["runtime"], ROLE_COLOURS["hypervisor"]}  # white text on these
ZOOM_FACTOR = 6.0  # a bar this many times taller than the smallest gets the others a zoomed panel


@dataclass
class _Stack:
    """One bar: its segments bottom-up as (value, colour, hatch), and an optional marker value."""

    segments: list[tuple[float, str, str | None]]
    marker: float | None = None

    @property
    def total(self) -> float:
        return sum(value for value, _, _ in self.segments)


def _draw_stacks(ax, run: LoadedRun, stacks: dict[tuple[str, str], _Stack], unit: str,
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
                        color="white" if colour in DARK else "black")
            bottom += value
        ax.annotate(number(bottom, unit), (index, bottom), xytext=(0, 6), textcoords="offset points",
                    ha="center", fontsize=14, fontweight="bold")
        marker = stacks[key].marker
        if finite(marker):
            ax.plot(index + 0.42, marker, marker="<", markersize=13, color="black", linestyle="none")
            marker_drawn = True
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([run.label(*key) for key in keys])
    colour_ticklabels(ax.get_xticklabels(), run, keys)
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.margins(y=0.15)
    ax.grid(axis="x", visible=False)
    plain_ticks(ax.yaxis)
    return marker_drawn


def _stacked_chart(run: LoadedRun, per_workload: dict[str, dict[tuple[str, str], _Stack]], ylabel: str,
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
    figure = new_figure(max(8.0, (1.6 + 1.5 * len(run.cells)) * len(workloads)), 5.2 * rows + 1.2)
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


def _ordered_roles(roles: dict) -> list[str]:
    return [r for r in ROLE_ORDER if r in roles] + [r for r in roles if r not in ROLE_ORDER]


@styled
def cpu_per_request(run: LoadedRun, out_dir: Path) -> list[Path]:
    """Host CPU time per request, stacked by role (app, runtime, proxy, hypervisor), user solid, sys hatched."""
    per_workload: dict[str, dict[tuple[str, str], _Stack]] = {}
    seen_roles: list[str] = []
    for workload in run.workloads:
        for key in run.cells:
            row = run.result(*key, workload)
            if not row or not row["roles"] or not row["throughput_rps"]:
                continue
            segments = []
            for role in _ordered_roles(row["roles"]):
                colour = ROLE_COLOURS.get(role, "#999999")
                for part, hatch in (("cpu_user_us_per_request", None), ("cpu_sys_us_per_request", "//")):
                    value = row["roles"][role].get(part)
                    if finite(value) and value > 0:
                        segments.append((value, colour if hatch is None else shade(colour, 2), hatch))
                        if role not in seen_roles:
                            seen_roles.append(role)
            if segments:
                inside = (row.get("inside") or {}).get("cpu_us_per_request")
                per_workload.setdefault(workload, {})[key] = _Stack(segments, inside)
    if not per_workload:
        return []
    figure, marker_drawn = _stacked_chart(run, per_workload, "CPU time per request (µs)", "µs")
    handles = [Patch(color=ROLE_COLOURS.get(role, "#999999"), label=ROLE_NAMES.get(role, role))
               for role in seen_roles]
    handles.append(Patch(facecolor="white", edgecolor="#555555", hatch="//", label="hatched: kernel (sys) time"))
    if marker_drawn:
        handles.append(Line2D([], [], marker="<", markersize=13, color="black", linestyle="none",
                              label="the app's own count, from inside"))
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    figure.suptitle("CPU per request on the host, by who spends it (lower is better)", fontsize=18)
    return save(figure, out_dir, "cpu_per_request")


def memory_layers_of(row: dict) -> dict[str, float]:
    """RSS in MB per layer for one summary cell; a VM's QEMU is split into the app (its own
    view from inside) and the guest kernel + devices (the rest)."""
    layers: dict[str, float] = {}
    for role in _ordered_roles(row.get("roles") or {}):
        rss = row["roles"][role].get("rss_mb")
        if not finite(rss):
            continue
        if role == "hypervisor":
            inside = (row.get("inside") or {}).get("rss_mb")
            if finite(inside) and 0 < inside <= rss:
                layers["app"] = layers.get("app", 0.0) + inside
                layers["guest"] = rss - inside
            else:
                layers["hypervisor"] = rss
        else:
            layers[role] = layers.get(role, 0.0) + rss
    return layers


@styled
def memory_layers(run: LoadedRun, out_dir: Path) -> list[Path]:
    """The layer cake: each setup's memory (RSS) stacked by layer, so each layer's cost is one slice."""
    per_workload: dict[str, dict[tuple[str, str], _Stack]] = {}
    seen: list[str] = []
    for workload in run.workloads:
        for key in run.cells:
            layers = memory_layers_of(run.result(*key, workload) or {})
            if not layers:
                continue
            names = [n for n in LAYER_ORDER if n in layers] + [n for n in layers if n not in LAYER_ORDER]
            seen.extend(n for n in names if n not in seen)
            per_workload.setdefault(workload, {})[key] = _Stack(
                [(layers[n], ROLE_COLOURS.get(n, "#999999"), None) for n in names])
    if not per_workload:
        return []
    figure, _ = _stacked_chart(run, per_workload, "resident memory, RSS (MB)", "MB", label_segments=True)
    handles = [Patch(color=ROLE_COLOURS.get(layer, "#999999"), label=LAYER_NAMES.get(layer, layer))
               for layer in LAYER_ORDER if layer in seen]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    figure.suptitle("The layer cake: memory each layer adds (RSS on the host; lower is better)", fontsize=18)
    return save(figure, out_dir, "memory_layers")
