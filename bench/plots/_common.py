"""What every chart shares: the loaded run, one colour per setup, big type, and saving.

Charts use matplotlib's object API (`Figure`, which draws with Agg) rather than pyplot, so
nothing global changes and charts can be drawn from any thread.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from bench.results import RunRecord, TrialRecord, load_run
from bench.summary import BASELINE, summarize

# Okabe-Ito (safe for colour-blind readers): one hue per setup, the same in every chart.
SETUP_COLOURS = {"bare": "#4d4d4d", "container": "#0072B2", "vm": "#D55E00"}
SPARE_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
ROLE_COLOURS = {"app": "#4d4d4d", "runtime": "#0072B2", "proxy": "#56B4E9", "hypervisor": "#D55E00",
                "guest": "#E69F00"}
ROLE_NAMES = {"app": "app", "runtime": "container runtime (shim)", "proxy": "docker-proxy (published port)",
              "hypervisor": "QEMU (guest + devices)"}
ROLE_ORDER = ("app", "runtime", "proxy", "hypervisor")

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
}
PNG_DPI = 110


@dataclass
class LoadedRun:
    """A stored run as charts see it: its record, its summary, and its folder for raw files."""

    record: RunRecord
    summary: dict
    run_dir: Path
    cells: list[tuple[str, str]] = field(default_factory=list)  # (setup, variant), bare first

    @classmethod
    def load(cls, run_dir: Path) -> "LoadedRun":
        record = load_run(run_dir)
        return cls.from_record(record, Path(run_dir))

    @classmethod
    def from_record(cls, record: RunRecord, run_dir: Path) -> "LoadedRun":
        summary = summarize(record)
        keys = list(dict.fromkeys((row["setup"], row["variant"]) for row in summary["results"]))
        keys.sort(key=lambda key: key[0] != BASELINE)  # stable: bare first, the rest as they ran
        return cls(record=record, summary=summary, run_dir=Path(run_dir), cells=keys)

    @property
    def workloads(self) -> list[str]:
        return list(dict.fromkeys(row["workload"] for row in self.summary["results"]))

    def result(self, setup: str, variant: str, workload: str) -> dict | None:
        for row in self.summary["results"]:
            if (row["setup"], row["variant"], row["workload"]) == (setup, variant, workload):
                return row
        return None

    def trials(self, setup: str, variant: str, workload: str | None = None) -> list[TrialRecord]:
        """Ok trials of one cell (every workload when workload is None), in the order they ran."""
        return [t for t in self.record.ok_trials() if (t.setup, t.variant) == (setup, variant)
                and (workload is None or t.workload == workload)]

    def colour(self, setup: str, variant: str) -> str:
        """The setup's hue; a second or third variant of one setup gets a lighter shade of it."""
        setups = list(dict.fromkeys(s for s, _ in self.cells))
        base = SETUP_COLOURS.get(setup) or SPARE_COLOURS[(setups.index(setup) if setup in setups else 0)
                                                        % len(SPARE_COLOURS)]
        variants = [v for s, v in self.cells if s == setup]
        index = variants.index(variant) if variant in variants else 0
        return shade(base, index)

    def label(self, setup: str, variant: str, sep: str = "\n") -> str:
        return setup if variant == "default" else f"{setup}{sep}{variant}"


def shade(colour: str, index: int) -> str:
    """Lighter shades of one hue for the 2nd, 3rd ... variant of a setup."""
    if index == 0:
        return colour
    red, green, blue = mcolors.to_rgb(colour)
    hue, light, sat = colorsys.rgb_to_hls(red, green, blue)
    light = min(0.85, light + 0.18 * index)
    return mcolors.to_hex(colorsys.hls_to_rgb(hue, light, sat))


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
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    with matplotlib.rc_context(STYLE):
        figure.savefig(paths[0], dpi=PNG_DPI, facecolor="white")
        figure.savefig(paths[1], facecolor="white")
    return paths


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def spans_decades(values, factor: float = 10.0) -> bool:
    """True when positive values span more than `factor`: draw that axis on a log scale."""
    data = [v for v in values if finite(v) and v > 0]
    return bool(data) and max(data) / min(data) > factor


def number(value: float, unit: str = "") -> str:
    """A short, readable figure: 22.4k, 1,102, 6.87, 0.064."""
    if not finite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 10000:
        text = f"{value / 1000:,.1f}k"
    elif magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip() if unit else text


def colour_ticklabels(axis_labels, run: LoadedRun, keys: list[tuple[str, str]]) -> None:
    """Colour category tick labels like their setup, so the setup reads the same everywhere."""
    for label, key in zip(axis_labels, keys):
        label.set_color(run.colour(*key))
        label.set_fontweight("bold")


def plain_ticks(axis, unit: str = "") -> None:
    """Tick labels as plain numbers (1, 10, 100; 22,500), never 10^2 or 2.25e4: newcomers read these."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    if axis.get_scale() == "log":
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.10g}{unit}"))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
