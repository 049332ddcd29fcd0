"""The one presentation vocabulary: labels, metrics, number formats, verdicts and caveats.

Every output (terminal, report, charts, compare, exports) names a layer, a metric or a warning
through this module, so they all say the same thing the same way. Caveats are computed once, as
data, by the model (`bench.model`); each output only decides how to show them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

MISSING = "–"


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


# ---- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A figure every output shows the same way. The unit is in the key (throughput_rps)."""

    key: str
    label: str  # short words: "throughput"
    unit: str  # "req/s"
    higher_is_better: bool
    worse: str  # verdict words: "slower"
    better: str  # "faster"
    digits: int | None = None  # fixed decimals, or None for digits by magnitude

    @property
    def title(self) -> str:
        """Label with unit, for a column or an axis: "throughput (req/s)"."""
        return f"{self.label} ({self.unit})"

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


METRICS: dict[str, Metric] = {metric.key: metric for metric in (
    Metric("throughput_rps", "throughput", "req/s", True, "slower", "faster", 0),
    Metric("latency_p50_ms", "p50 latency", "ms", False, "slower", "faster"),
    Metric("latency_p99_ms", "p99 latency", "ms", False, "slower", "faster"),
    Metric("cpu_us_per_request", "CPU per request", "µs", False, "costlier", "cheaper", 0),
    # PSS adds up across processes (a shared page is split among those that map it): the headline.
    Metric("memory_pss_mb", "memory, PSS", "MB", False, "larger", "smaller", 1),
    Metric("memory_uss_mb", "memory, USS", "MB", False, "larger", "smaller", 1),
    Metric("memory_rss_mb", "memory, RSS", "MB", False, "larger", "smaller", 1),
    Metric("startup_s", "start-up", "s", False, "slower", "faster", 3),
)}
# The figures the headline chart and the overhead matrix show, in this order.
HEADLINE_METRICS = ("throughput_rps", "latency_p99_ms", "cpu_us_per_request", "memory_pss_mb", "startup_s")
PERCENTILE_LABELS = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9"}
# The latency columns of a table: the percentiles and the slowest request (over repeats: the worst one).
LATENCY_LABELS = {**PERCENTILE_LABELS, "max": "max"}


def metric(key: str) -> Metric:
    """The registered metric, or a plain stand-in for a key this version does not know."""
    return METRICS.get(key) or Metric(key, key, "", False, "higher", "lower")


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


def state_of(metric_key: str, decision: str) -> Verdict:
    """A decision of bench.stats.decide ("higher", "lower", "same", "undecided") for this metric's direction."""
    if decision in ("same", "undecided"):
        return decision  # type: ignore[return-value]
    return "better" if (decision == "higher") == metric(metric_key).higher_is_better else "worse"


def percent(fraction: float) -> str:
    """0.05 -> "5%", 0.025 -> "2.5%"."""
    return f"{fraction * 100:g}%"


def verdict(metric_key: str, ratio, state: Verdict, min_effect: float) -> str:
    """Plain words for a ratio (an Estimate) and its state: "3.5x slower (interval 3.1x..3.9x)",
    "slower by 12% (interval 8%..15%)", "same within ±5% (interval 0.98..1.03)",
    "undecided: run more rounds (interval 0.91..1.12)"."""
    values = (ratio.median, ratio.low, ratio.high)
    if not all(finite(x) for x in values):
        return "undecided: not enough data"
    bounds = f"interval {ratio.low:.2f}..{ratio.high:.2f}"
    if state == "same":
        return f"same within ±{percent(min_effect)} ({bounds})"
    if state == "undecided":
        rounds = " (1 round gives no interval)" if getattr(ratio, "n", 0) == 1 else ""
        return f"undecided: run more rounds{rounds} ({bounds})"
    meaning = metric(metric_key)
    word = meaning.worse if state == "worse" else meaning.better
    if meaning.higher_is_better:  # throughput: a ratio of 0.5 means the setup does half the work: "slower by 50%"
        change, low, high = abs(1 - ratio.median), abs(1 - ratio.high), abs(1 - ratio.low)
    else:
        change, low, high = abs(ratio.median - 1), abs(ratio.low - 1), abs(ratio.high - 1)
    low, high = sorted((low, high))
    # From a factor of 2 on, "4.5x slower" reads better than "slower by 350%".
    factor, factor_low, factor_high = ratio.median, ratio.low, ratio.high
    if ratio.median < 1:
        # A noisy interval may reach 0 (or below): its far end is then unbounded, not a crash.
        def inverse(value: float) -> float:
            return 1 / value if value > 0 else math.inf

        factor, factor_low, factor_high = inverse(ratio.median), inverse(ratio.high), inverse(ratio.low)
    if factor >= 2:
        return f"{factor:.1f}x {word} (interval {factor_low:.1f}x..{factor_high:.1f}x)"
    return f"{word} by {change * 100:.0f}% (interval {low * 100:.0f}%..{high * 100:.0f}%)"


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
        latency = record.load.get("latency_ms", {})
        cpu = record.cpu_us_per_request
        cpu_text = fmt(cpu["user"] + cpu["sys"], 0) if cpu else MISSING
        return (f"{subject}: {fmt(record.load.get('throughput_rps'), 0)} req/s, p99 {fmt(latency.get('p99'), 2)} ms, "
                f"CPU {cpu_text} µs/req")
    if record.kind == "startup":
        phases = ", ".join(f"{phase_label(name, True)} {value:.3f}" for name, value in record.startup_phases_s.items())
        return f"{subject}: started in {fmt(record.startup_s, 3)} s ({phases})"
    memory = record.memory_bytes
    pss = memory.get("pss_per_instance", memory.get("pss"))
    each = " per instance" if "pss_per_instance" in memory else ""
    return f"{subject}: PSS {fmt(pss / 2**20 if pss else None, 1)} MB{each}"
