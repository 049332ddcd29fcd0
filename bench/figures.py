"""The figures layerbench reports, in one registry: what each is called, its unit, which way is
better, how it is written, and how it is read off a stored trial.

Adding a metric is one `Metric(...)` line in `METRICS` (its reader included): the model computes
its rounds, intervals and ratios, and every output (tables, charts, exports, compare, the gate)
shows it. Ratios and changes are written by `ratio_text` and `change_text` only, so a ratio reads
the same in the terminal, the live panel, a chart and a gate's finding.

Memory is in MiB (2^20 bytes) everywhere: the keys keep their historical `_mb` suffix (users' gates
name them: `--fail-on memory_pss_mb:+10%`), the unit every output prints says MiB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from bench.vocabulary import MIB_BYTES, Verdict, finite, fmt, percent

MEMORY_UNIT = "MiB"  # of MIB_BYTES (bench.vocabulary)

def _throughput_rps(trial) -> float | None:
    return trial.load.throughput_rps if trial.load else None


def _latency_ms(percentile: str) -> Callable[[object], float | None]:
    def read(trial) -> float | None:
        return trial.load.latency_ms.named(percentile) if trial.load else None
    return read


def _app_time_ms(percentile: str) -> Callable[[object], float | None]:
    """The app's own time per request (its Server-Timing header: the handler, without the network
    path or the load generator) at one percentile of the window; None where the app sends none (nginx)."""
    def read(trial) -> float | None:
        value = trial.load.app_ms.named(percentile) if trial.load else None
        return value if finite(value) else None
    return read


def _cpu_per_request(trial) -> float | None:
    cpu = trial.cpu_us_per_request
    return cpu.total_us if cpu is not None else None


def _memory_mib(part: str) -> Callable[[object], float | None]:
    def read(trial) -> float | None:
        value = getattr(trial.memory_bytes, part)
        return value / MIB_BYTES if value is not None else None
    return read


def _startup_s(trial) -> float | None:
    return trial.startup_s


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
    read: Callable[[object], float | None] = lambda trial: None  # the figure of one stored trial
    # Read off the requests no neighbour interrupted, so other processes' load does not move it: the
    # gate does not hold a regression of it undecided when NEW's machine was busier (bench.gate).
    spared_by_neighbours: bool = False

    @property
    def title(self) -> str:
        """Label with unit, for a column or an axis: "throughput (req/s)"."""
        return f"{self.label} ({self.unit})"

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def of(self, trial) -> float | None:
        """This figure of one stored trial (a bench.results.TrialRecord); None when it has none."""
        return self.read(trial)

    def format(self, value) -> str:
        """The figure as tables write it: its digits, – when missing."""
        return fmt(value, self.digits)


METRICS: dict[str, Metric] = {metric.key: metric for metric in (
    Metric("throughput_rps", "throughput", "req/s", True, "slower", "faster", 0, _throughput_rps),
    Metric("latency_p50_ms", "p50 latency", "ms", False, "slower", "faster", None, _latency_ms("p50")),
    Metric("latency_p99_ms", "p99 latency", "ms", False, "slower", "faster", None, _latency_ms("p99")),
    # The work of one request as the app times it: what a code change moves. Its fast end (p5) is
    # what a shared machine's neighbours move least: gate code changes on it (tools/gate_check.py).
    Metric("app_time_p5_ms", "time in the app, p5", "ms", False, "slower", "faster", None, _app_time_ms("p5"),
           spared_by_neighbours=True),
    Metric("app_time_p50_ms", "time in the app, p50", "ms", False, "slower", "faster", None, _app_time_ms("p50")),
    Metric("cpu_us_per_request", "CPU per request", "µs", False, "costlier", "cheaper", 0, _cpu_per_request),
    # PSS adds up across processes (a shared page is split among those that map it): the headline.
    Metric("memory_pss_mb", "memory, PSS", MEMORY_UNIT, False, "larger", "smaller", 1, _memory_mib("pss")),
    Metric("memory_uss_mb", "memory, USS", MEMORY_UNIT, False, "larger", "smaller", 1, _memory_mib("uss")),
    Metric("memory_rss_mb", "memory, RSS", MEMORY_UNIT, False, "larger", "smaller", 1, _memory_mib("rss")),
    Metric("startup_s", "start-up", "s", False, "slower", "faster", 3, _startup_s),
)}
# The figures the headline chart and the overhead matrix show, in this order.
HEADLINE_METRICS = ("throughput_rps", "latency_p99_ms", "cpu_us_per_request", "memory_pss_mb", "startup_s")


def metric(key: str) -> Metric:
    """The registered metric, or a plain stand-in for a key this version does not know."""
    return METRICS.get(key) or Metric(key, key, "", False, "higher", "lower")


# ---- ratios ------------------------------------------------------------------------------------


def ratio_text(value: float) -> str:
    """A ratio in at most 5 characters, then ×: 0.05×, 2.15×, 21.8×, 109×, 64.8k×."""
    if not finite(value):
        return "–"
    if value >= 1000:
        number = f"{value / 1000:.1f}k" if value < 99_950 else f"{value:.0e}"
    else:
        number = f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return number + "×"


def interval_text(low: float, high: float) -> str:
    """A ratio's interval: [1.85–2.50]."""
    return f"[{ratio_text(low).rstrip('×')}–{ratio_text(high).rstrip('×')}]"


def change_text(ratio: float) -> str:
    """A ratio as a signed change: 1.123 -> +12.3%."""
    return f"{(ratio - 1) * 100:+.1f}%"


# ---- verdicts ----------------------------------------------------------------------------------


def state_of(metric_key: str, decision: str) -> Verdict:
    """A decision of bench.stats.decide ("higher", "lower", "same", "undecided") for this metric's direction."""
    if decision in ("same", "undecided"):
        return decision  # type: ignore[return-value]
    return "better" if (decision == "higher") == metric(metric_key).higher_is_better else "worse"


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
