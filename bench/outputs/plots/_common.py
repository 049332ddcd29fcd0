"""What every chart shares: one colour per layer, big type, and saving.

Charts use matplotlib's object API (`Figure`, which draws with Agg) rather than pyplot, so
nothing global changes and charts can be drawn from any thread.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib import colors as mcolors
from matplotlib.artist import Artist
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FuncFormatter

from bench.model import Run
from bench.vocabulary import finite, label, printable, short


STYLE = {
    "font.size": 15,
    "axes.titlesize": 17,
    "axes.titleweight": "bold",
    "axes.labelsize": 15,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "legend.fontsize": 13,
    "figure.titlesize": 20,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.fonttype": "none",  # text stays text in SVG: smaller, searchable, editable
    "text.parse_math": False,  # a "$" in a variant or workload name is a dollar sign, not TeX (or a crash)
}
PNG_DPI = 110


def colour(run: Run, setup: str, variant: str, app: str | None = None) -> str:
    """A layer's hue in every chart (bench.model.Run.colour)."""
    return run.colour(setup, variant, app)


TICK_LINE_CHARS = 16  # a column's variant: a line of its label at most this long (when it has commas)
TICK_CHARS = 40  # a longer label (a variant naming a long image path) would squeeze the plot to nothing


def app_index(run: Run, app: str | None) -> int:
    """0 for the run's first app (or a run of one), 1 for its second, ..."""
    return run.apps.index(app) if app in run.apps else 0


def hatch(run: Run, app: str | None) -> str | None:
    """A bar's hatch: none for the first app, then a pattern per app, so apps tell apart in grey too."""
    return (None, "//", "..", "xx")[app_index(run, app) % 4]


def line_style(run: Run, app: str | None) -> str:
    """A line's style: solid for the first app, then dashed, dotted, dash-dot."""
    return ("-", "--", ":", "-.")[app_index(run, app) % 4]


def tick_label(setup: str, variant: str, app: str | None = None, two_lines: bool = True) -> str:
    """The layer's one label (with its app in a run of several), broken before its variant for a
    narrow tick, the variant's comma-separated parts on lines of their own when long (eight
    Podman and Docker columns side by side overlapped), cut short if very long (the report's
    tables give it whole)."""
    text = chart_text(label(setup, variant, app))
    limit = TICK_CHARS * 3 // 2 if two_lines else TICK_CHARS  # wrapped, a longer one still fits
    if len(text) > limit:
        text = text[:limit - 2].rstrip() + "…" + (")" if text.endswith(")") else "")
    if not two_lines:
        return text
    head, opened, rest = text.partition(" (")
    if opened:
        inside, closed, tail = rest.partition(")")
        text = f"{head}\n({_packed(inside.split(','), TICK_LINE_CHARS)}{closed}{tail}"
    return text.replace(" · ", " ·\n", 1)


def _packed(parts: list[str], chars: int) -> str:
    """Comma-separated parts, as many on a line as fit in chars."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 1 + len(part) <= chars:
            lines[-1] += "," + part
        else:
            lines[-1] += ","
            lines.append(part)
    return "\n".join(lines)


def text_on(hue: str) -> str:
    """White or black, whichever reads better on a bar of this hue (relative luminance)."""
    red, green, blue = mcolors.to_rgb(hue)
    return "white" if 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.45 else "black"


def new_figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def styled(function):
    """Run a chart function with the house style active (rcParams apply at artist creation)."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    wrapper.__wrapped__ = function
    return wrapper


def save(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.png and `name`.svg into out_dir; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _printable_text(figure)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    with matplotlib.rc_context(STYLE):
        figure.savefig(paths[0], dpi=PNG_DPI, facecolor="white")
        # The SVG keeps the layout the PNG got (axes placed in fractions of the figure, text in
        # points) instead of solving it again: a fifth of a chart's time. Text measured at 72 dpi
        # instead of 110 moved an axis edge by ~2 pt in 700.
        figure.set_layout_engine("none")
        figure.savefig(paths[1], facecolor="white")
    return paths


def chart_text(text: object) -> str:
    """Text as a chart may draw it: line breaks kept (titles and ticks are laid out on several
    lines on purpose), every other control character shown escaped."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def texts_of(artist: Artist) -> list[Text]:
    """Every text of a chart but its tick labels: titles, axis labels, legends, annotations.

    Not `findobj(Text)`: an axis lists its ticks as children, and matplotlib makes every Tick
    (two lines, two texts, a grid line) the moment it is asked for them, which cost more than
    building the rest of the chart. Tick labels are written from the axis' formatter when the chart
    is drawn, so what they say is decided there (`_printable_text` wraps the formatters)."""
    found = [artist] if isinstance(artist, Text) else []
    children = (artist.label, artist.offsetText) if isinstance(artist, Axis) else artist.get_children()
    for child in children:
        found += texts_of(child)
    return found


def _printable_text(figure: Figure) -> None:
    """Names from run.json in a chart (labels, titles, legends, category ticks) with control
    characters shown escaped: they would be drawn as missing glyphs, or break the SVG."""
    for text in texts_of(figure):
        text.set_text(chart_text(text.get_text()))
    for ax in figure.axes:  # category ticks are drawn later, from the formatter's list
        for axis in (ax.xaxis, ax.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(formatter, FixedFormatter):
                    formatter.seq = [chart_text(item) for item in formatter.seq]
                elif isinstance(formatter, FuncFormatter) and not getattr(formatter.func, "printable", False):
                    formatter.func = _printable_func(formatter.func)


def _printable_func(func):
    def shown(value, position=None):
        return chart_text(func(value, position))
    shown.printable = True
    return shown


def spans_decades(values, factor: float = 10.0) -> bool:
    """True when positive values span more than `factor`: draw that axis on a log scale."""
    data = [v for v in values if finite(v) and v > 0]
    return bool(data) and max(data) / min(data) > factor


def colour_ticklabels(axis_labels, run: Run, keys: list[tuple[str, str]]) -> None:
    """Colour category tick labels like their setup, so the setup reads the same everywhere."""
    for text, key in zip(axis_labels, keys):
        text.set_color(colour(run, *key))
        text.set_fontweight("bold")


def plain_ticks(axis, unit: str = "") -> None:
    """Tick labels as plain numbers (1, 10, 100; 22,500), never 10^2 or 2.25e4: newcomers read these."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    if axis.get_scale() == "log":
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.10g}{unit}"))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


number = short  # chart annotations use the compact figures of bench.vocabulary
__all__ = ["Run", "app_index", "colour", "colour_ticklabels", "finite", "hatch", "line_style", "new_figure", "number",
           "plain_ticks", "save", "spans_decades", "styled", "text_on", "tick_label"]
