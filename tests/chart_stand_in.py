"""A stand-in for matplotlib's `Figure.savefig`: a 1x1 PNG, or an SVG holding the figure's texts.

Rendering (layout and rasterising, PNG then SVG) is nine tenths of a chart's cost and does not
depend on the run: what a run can break is which charts exist and what they say, which is decided
before rendering. Unit tests use this (tests/unit/conftest.py) unless marked `real_charts`;
tests/integration renders every shipped scenario's charts for real.
"""

from __future__ import annotations

import base64
from html import escape

from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter

ONE_PIXEL_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==")
REAL_SAVEFIG = Figure.savefig


def _texts(figure: Figure) -> list[str]:
    """The chart's texts, its category ticks among them (what the formatter gives: the tick texts
    themselves are written when a chart is drawn, so they are not asked for: texts_of says why)."""
    from bench.outputs.plots._common import texts_of  # here: a fresh interpreter installs this before it imports bench

    texts = [text.get_text() for text in texts_of(figure)]
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, FixedFormatter):
                texts += list(formatter.seq)
    return [text for text in texts if text]


def stand_in_savefig(figure: Figure, path, **kwargs) -> None:
    """Write what a reader of the file can check without pixels: a valid PNG, or the SVG's texts."""
    if str(path).endswith(".svg"):
        body = "".join(f"<text>{escape(text)}</text>" for text in _texts(figure))
        data = f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>'.encode()
    else:
        data = ONE_PIXEL_PNG
    with open(path, "wb") as out:
        out.write(data)


def install() -> None:
    Figure.savefig = stand_in_savefig


# What a fresh interpreter runs first to draw no chart either (tests/unit/test_architecture._fresh_python).
INSTALL_CODE = "import tests.chart_stand_in; tests.chart_stand_in.install()\n"
