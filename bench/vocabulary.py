"""The one presentation vocabulary: labels, number formats, verdict states and caveats (the metrics: bench.figures).

Every output (terminal, report, charts, compare, exports) names a layer, a metric or a warning
through this module, so they all say the same thing the same way. Caveats are computed once, as
data, by the model (`bench.model`); each output only decides how to show them.
"""

from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass
from typing import Literal

MISSING = "–"
MIB_BYTES = 1024 ** 2  # the one meaning of a memory megabyte, and every output says MiB


def printable(text: object) -> str:
    """Text with every control or invisible formatting character shown escaped (\\x1b, \\n, \\u202e):
    a terminal title, a screen clear or a reversed line in a run file stays visible text."""
    raw = str(text)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in raw)


def label(setup: str, variant: str, app: str | None = None) -> str:
    """The one label of a setup variant: `bare`, `container (bridge)`, `vm (tcg,disk)`; with the app
    it runs when a run holds several: `nginx · container (bridge)`."""
    layer = setup if variant == "default" else f"{setup} ({variant})"
    return f"{app} · {layer}" if app else layer


def cell_label(setup: str, variant: str, workload: str, app: str | None = None) -> str:
    """A cell: one setup variant under one workload, e.g. `container (bridge) / hello`
    (`nginx · container (bridge) / hello` when the run holds several apps)."""
    return f"{label(setup, variant, app)} / {workload}"


# ---- metrics: bench.figures (the one registry) -----------------------------------------------

PERCENTILE_LABELS = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9"}
# The latency columns of a table: the percentiles and the slowest request (over repeats: the worst one).
LATENCY_LABELS = {**PERCENTILE_LABELS, "max": "max"}


# ---- numbers ----------------------------------------------------------------------------------


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value, digits: int | None = None, unit: str = "") -> str:
    """A figure for a table: thousands separators, digits by magnitude unless given, – when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if digits is None:
        magnitude = abs(value)
        digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 0.1 else 3
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def fmt_interval(estimate, digits: int | None = None) -> str:
    """`median [low–high]` for an Estimate (or its dict), – when missing."""
    if not estimate:
        return MISSING
    get = estimate.get if isinstance(estimate, dict) else lambda key: getattr(estimate, key)
    return f"{fmt(get('median'), digits)} [{fmt(get('low'), digits)}–{fmt(get('high'), digits)}]"


def short(value, unit: str = "") -> str:
    """A compact figure for a chart annotation: 22.4k, 1,102, 6.87, 0.064."""
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


def phase_label(name: str, short_form: bool = False) -> str:
    """`kernel_to_init_s` -> `kernel to init`; `first_200_s` -> `launched → first HTTP 200`."""
    if name == "first_200_s":
        return "to first 200" if short_form else "launched → first HTTP 200 (app ready)"
    return name.removesuffix("_s").replace("_", " ")


# ---- colours ----------------------------------------------------------------------------------

# Hues for layers that declare none (the Okabe-Ito palette, which colour-blind readers tell apart).
SPARE_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#0072B2", "#D55E00")
FALLBACK_COLOUR = "#999999"
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def shade(hue: str, index: int, min_lightness: float = 0.0) -> str:
    """The one shading of a hue: lighter for a setup's 2nd, 3rd ... variant (index 1, 2, ...), and
    never darker than min_lightness (a terminal's dark background swallows a dark bar). A colour that
    is not #rrggbb is returned as it is."""
    if (index == 0 and min_lightness == 0) or not HEX_COLOUR.fullmatch(hue):
        return hue
    red, green, blue = (int(hue[i:i + 2], 16) / 255 for i in (1, 3, 5))
    tone, light, saturation = colorsys.rgb_to_hls(red, green, blue)
    # Capped: a label in the third shade must still read on white (three rootless Podman variants)
    light = min(0.72, max(light, min_lightness) + 0.14 * index)
    return "#" + "".join(f"{round(part * 255):02x}" for part in colorsys.hls_to_rgb(tone, light, saturation))


# ---- the layer stack -------------------------------------------------------------------------

# The kinds of box a setup's `stack_layers` may name, bottom-up, with their fill in the layer-stack
# figure (light fills, dark words: readable on a projector). A box is "kind" or "kind (detail)".
STACK_LAYERS: dict[str, str] = {
    "hardware": "#d9d9d9",
    "host kernel": "#a6a6a6",
    "hypervisor": "#f4a582",
    "emulator": "#f4a582",
    "guest kernel": "#fdd49e",
    "container engine": "#92c5de",
    "sandbox kernel": "#d8b2d1",
    "app": "#4d4d4d",
}
UNKNOWN_STACK_LAYER = "#eeeeee"


def stack_kind(box: str) -> str:
    """The kind of a layer-stack box: "emulator (QEMU, TCG)" -> "emulator"."""
    return box.split(" (", 1)[0].strip()


# ---- verdicts ----------------------------------------------------------------------------------

# Three states, never two: "same" is a finding (the interval lies within the minimum effect), not
# "could not tell", which is "undecided". bench.stats.decide says which way a ratio goes.
Verdict = Literal["worse", "better", "same", "undecided"]
VERDICT_STATES: tuple[Verdict, ...] = ("worse", "better", "same", "undecided")
VERDICT_STYLE = {"worse": "bold red", "better": "bold green", "same": "dim", "undecided": "yellow"}
VERDICT_MEANING = ("worse / better: the interval excludes 1.00 and the ratio is at least {effect} away from it; "
                   "same: the whole interval lies within 1.00 ± {effect}; undecided: neither, run more rounds")


def percent(fraction: float) -> str:
    """0.05 -> "5%", 0.025 -> "2.5%"."""
    return f"{fraction * 100:g}%"


# ---- caveats ----------------------------------------------------------------------------------

Severity = Literal["warning", "note"]


@dataclass(frozen=True)
class Caveat:
    """Something a reader must know before trusting a figure, computed once as data.

    `kind` is stable (noisy, busy, stall, failed, errors, single_repeat, skipped, incomplete,
    no_baseline, layer, unreadable); `subject` names the cell or layer ("" for the whole run); `text` is the
    full sentence (report, exports); `flag` is the few words a table cell shows.
    """

    kind: str
    subject: str
    text: str
    flag: str = ""
    severity: Severity = "warning"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "text": self.text, "flag": self.flag,
                "severity": self.severity}


# ---- one trial, as progress shows it ---------------------------------------------------------


def trial_line(record, show_app: bool = False) -> str:
    """One line for a finished trial (a bench.results.TrialRecord): its main figure in words;
    show_app names its app (a run of several)."""
    subject = cell_label(record.setup, record.variant, record.workload, record.app if show_app else None)
    if record.kind == "load" and record.load:
        load = record.load
        cpu = record.cpu_us_per_request
        cpu_text = fmt(cpu.total_us, 0) if cpu else MISSING
        return (f"{subject}: {fmt(load.throughput_rps, 0)} req/s, p99 {fmt(load.latency_ms.p99, 2)} ms, "
                f"CPU {cpu_text} µs/req")
    if record.kind == "startup":
        phases = ", ".join(f"{phase_label(name, True)} {value:.3f}" for name, value in record.startup_phases_s.items())
        return f"{subject}: started in {fmt(record.startup_s, 3)} s ({phases})"
    memory = record.memory_bytes
    each = " per instance" if memory.pss_per_instance is not None else ""
    pss = memory.pss_per_instance if each else memory.pss
    return f"{subject}: PSS {fmt(pss / MIB_BYTES if pss else None, 1)} MiB{each}"
