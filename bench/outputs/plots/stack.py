"""The layer stack: one column per setup variant, drawn as the boxes a request crosses, bottom-up
(hardware, host kernel, hypervisor or emulator, guest kernel, container engine, sandbox kernel,
app), each column topped with what that layer measured: its throughput against the baseline on
the first load workload, its start-up and its memory (per instance, plus its engine's fixed cost).

The boxes come from what each setup declared (`LayerRecord.stack_layers`); a layer that declared
none (an older run) is left out.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.patches import FancyBboxPatch

from bench.model import Run, median_of
from bench.outputs.plots._common import colour, new_figure, save, styled, text_on, tick_label
from bench.figures import interval_text, ratio_text
from bench.vocabulary import STACK_LAYERS, UNKNOWN_STACK_LAYER, fmt, short, stack_kind

BOX_WIDTH = 0.86
BOX_GAP = 0.1
FIGURE_LINES = 5  # lines of measured figures above the columns (at most)
BOX_POINTS = 13  # a box's text of several lines; smaller (down to MIN_BOX_POINTS) when it overflows
MIN_BOX_POINTS = 8


def _first_load_workload(run: Run) -> str | None:
    return next((cell.workload for cell in run.cells if cell.has_load), None)


def _throughput_line(run: Run, key: tuple[str, str], workload: str | None) -> str:
    if workload is None:
        return ""
    if key[0] == run.baseline:
        cell = run.cell(*key, workload)
        value = cell.median("throughput_rps") if cell else None
        return f"{workload}: {fmt(value, 0)} req/s" if value is not None else ""
    ratio = next((row.ratio for row in run.overhead if (row.setup, row.variant) == key
                  and row.workload == workload and row.metric == "throughput_rps"), None)
    if ratio is None:
        return ""
    return f"{workload}: {ratio_text(ratio.median)} {run.baseline}\n{interval_text(ratio.low, ratio.high)}"


def _figures(run: Run, key: tuple[str, str], workload: str | None) -> str:
    """The measured figures on top of one column (what its boxes cost, as this run saw it)."""
    lines = [_throughput_line(run, key, workload)]
    start = median_of(value for cell in run.cells_of(*key) for value in cell.values("startup_s"))  # every fresh start
    if start is not None:
        lines.append(f"start-up {short(start, 's')}")
    cost = run.layer_cost(*key)
    pss = cost.per_instance_mb.pss if cost.per_instance_mb else None
    if pss is not None:
        lines.append(f"PSS {short(pss, 'MiB')}")
        if cost.fixed is not None and cost.fixed.pss_mb is not None:
            lines.append(f"+ {short(cost.fixed.pss_mb, 'MiB')} once per host")
    return "\n".join(line for line in lines if line)


def _box_text(box: str, chars: int) -> str:
    """The box's kind, then its detail: its "; "-separated parts packed into lines of at most chars
    (joined by " · "), a part longer than that wrapped."""
    kind = stack_kind(box)
    detail = box[len(kind):].strip().removeprefix("(").removesuffix(")")
    lines = [kind]
    for part in (part for part in detail.split("; ") if part):
        if len(lines) > 1 and len(lines[-1]) + 3 + len(part) <= chars:
            lines[-1] += " · " + part
        else:
            lines += textwrap.wrap(part, chars)
    return "\n".join(lines)


def _draw_column(ax, index: int, boxes: list[str], chars: int) -> list[tuple]:
    """The column's boxes; returns each box's (text, its layer string) for _fit_texts."""
    texts = []
    for level, box in enumerate(boxes):
        kind = stack_kind(box)
        fill = STACK_LAYERS.get(kind, UNKNOWN_STACK_LAYER)
        ax.add_patch(FancyBboxPatch((index - BOX_WIDTH / 2, level + BOX_GAP / 2), BOX_WIDTH, 1 - BOX_GAP,
                                    boxstyle="round,pad=0,rounding_size=0.06", facecolor=fill, edgecolor="white",
                                    linewidth=2))
        text = _box_text(box, chars)
        texts.append((ax.text(index, level + 0.5, text, ha="center", va="center",
                              fontsize=BOX_POINTS if "\n" in text else 15, color=text_on(fill), linespacing=1.15,
                              fontweight="bold" if kind == "app" else "normal"), box))
    return texts


def _fit_texts(figure, ax, texts: list[tuple], chars: int) -> None:
    """Shrink (and re-pack wider) a box's text that overflows its box: an engine with many parts
    (rootless Podman's) would otherwise spill over the boxes above and below."""
    figure.draw_without_rendering()  # the constrained layout places the axes first
    (_, bottom), (_, top) = ax.transData.transform([(0, 0), (0, 1 - BOX_GAP)])
    room_px = 0.92 * (top - bottom)
    for text, box in texts:
        points = text.get_fontsize()
        while text.get_window_extent().height > room_px and points > MIN_BOX_POINTS:
            points -= 1
            text.set_text(_box_text(box, int(chars * BOX_POINTS / points)))
            text.set_fontsize(points)


@styled
def layer_stack(run: Run, out_dir: Path) -> list[Path]:
    """One column per setup variant: the layers a request crosses, with what each column measured."""
    keys = [key for key in run.layer_keys if run.layer(*key).stack_layers]
    if not keys:
        return []
    tallest = max(len(run.layer(*key).stack_layers) for key in keys)
    workload = _first_load_workload(run)
    width_in = max(11.0, 2.7 * len(keys) + 1.0)
    figure = new_figure(width_in, 1.2 * tallest + 3.4)
    ax = figure.subplots()
    # Characters of 13-point text a box holds: its width in points over an average glyph's.
    chars = max(10, int(BOX_WIDTH * 0.95 * width_in / (len(keys) + 0.1) * 72 / (0.6 * BOX_POINTS)))
    texts = [text for index, key in enumerate(keys) for text in _draw_column(ax, index, run.layer(*key).stack_layers,
                                                                           chars)]
    top = tallest + 0.35 + 0.22 * FIGURE_LINES
    for index, key in enumerate(keys):  # aligned at the top, the figures read across like a table row
        ax.text(index, top, _figures(run, key, workload), ha="center", va="top", fontsize=14, linespacing=1.3,
                color="#1d1d1d")
    ax.set_xlim(-0.55, len(keys) - 0.45)
    ax.set_ylim(0, top + 0.1)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([tick_label(*key) for key in keys])
    for text, key in zip(ax.get_xticklabels(), keys):
        text.set_color(colour(run, *key))
        text.set_fontweight("bold")
        text.set_fontsize(14)
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", length=0)
    base = f"ratio of req/s to {run.baseline}, 95% interval; " if run.baseline and workload else ""
    figure.suptitle("What each setup puts between the app and the hardware", fontsize=19)
    ax.set_title(f"on top: {base}start-up (median of every fresh start);\nmemory PSS per instance, and the "
                 f"engine's fixed cost (paid once, however many instances run)", fontsize=13, fontweight="normal",
                 color="#555555")
    _fit_texts(figure, ax, texts, chars)
    return save(figure, out_dir, "layer_stack")
