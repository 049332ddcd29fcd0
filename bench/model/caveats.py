"""The caveats of a cell: one check per kind of doubt, each returning a Caveat or None.

A new kind of doubt is one function here, added to CELL_CHECKS; every output (terminal flags,
report warnings, JSON, exports) then shows it, worded as it is worded here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from bench import stats
from bench.figures import metric
from bench.vocabulary import Caveat, finite, fmt

if TYPE_CHECKING:  # annotations only: Cell.caveats() imports this module
    from bench.model.cell import Cell

MEMORY_CROSS_CHECK = 0.25  # MemAvailable drop vs USS per instance further apart than this: flagged
WARMING = 0.10  # a start's last trial this far from its first, beyond noise over starts: warming up or slowing down
STARTS_DIFFER = 0.10  # spread between starts (log sd) above this, and above twice the spread within one


def noisy(cell: Cell) -> Caveat | None:
    if not cell.noisy:
        return None
    return Caveat("noisy", cell.subject, f"Noisy: {cell.subject}: its rounds spread {cell.spread:.0%} of their median; "
                  f"treat its figures and ratios with care, or run more rounds.",
                  f"noisy: rounds spread {cell.spread:.0%}")


def failed(cell: Cell) -> Caveat | None:
    if not cell.failed:
        return None
    return Caveat("failed", cell.subject, f"{cell.failed} failed trial(s) in {cell.subject}.", f"{cell.failed} failed")


def busy_machine(cell: Cell) -> Caveat | None:
    if not cell.busy_repeats:
        return None
    cores = cell.foreign_cpu_cores or 0.0
    return Caveat("busy", cell.subject, f"Busy machine during {cell.subject}: in {cell.busy_repeats} trial(s) other "
                  f"processes used up to {cores:.2f} cores while it was measured; those figures include their "
                  f"interference.", f"busy machine in {cell.busy_repeats} trial(s): others used up to {cores:.2f} cores")


def stall(cell: Cell) -> Caveat | None:
    """No request completed for a stall's length in some repeat (see Cell.stalls)."""
    if not cell.stalls:
        return None
    longest = max(seconds for _, seconds in cell.stalls)
    return Caveat("stall", cell.subject, f"Stall in {cell.subject}: in {len(cell.stalls)} trial(s) no request "
                  f"completed for up to {longest:.1f} s (the app or the machine stopped); its throughput and latency "
                  f"include that pause.", f"stalled {longest:.1f} s in {len(cell.stalls)} trial(s)")


def request_errors(cell: Cell) -> Caveat | None:
    if not cell.errors_by_kind:
        return None
    kinds = ", ".join(f"{kind}={count}" for kind, count in cell.errors_by_kind.items())
    return Caveat("errors", cell.subject, f"Request errors in {cell.subject}: {kinds}", f"errors {kinds}")


def generator_bound(cell: Cell) -> Caveat | None:
    """The load generator's CPU was (nearly) saturated: the client, not the app, may have set the pace."""
    stats = [t.load.generator_stats for t in cell.ok if t.load and t.load.generator_stats]
    bound = [s for s in stats if s.bound]
    if not bound:
        return None
    worst = max(max(s.busy_fraction or 0.0, s.runnable_fraction or 0.0) for s in bound)
    return Caveat("generator_bound", cell.subject, f"Generator-bound: in {len(bound)} trial(s) of {cell.subject} the "
                  f"load generator's CPU was {worst:.0%} busy or waiting to run, so the client, not the app, may have "
                  f"set the pace: use `load: wrk`, give the load more CPUs (pinning.load_cpus), and keep other work "
                  f"off them.", f"generator-bound in {len(bound)} trial(s)")


def memory_mismatch(cell: Cell) -> Caveat | None:
    """Density: the host's MemAvailable drop and the USS per instance disagree by more than 25%."""
    figures = cell.memory_per_instance_mb
    if figures is None:
        return None
    uss, drop = figures.uss, figures.available_drop
    if not finite(uss) or not finite(drop) or uss <= 0 or abs(drop - uss) / uss <= MEMORY_CROSS_CHECK:
        return None
    apart = abs(drop - uss) / uss
    return Caveat("memory_mismatch", cell.subject,
                  f"Memory cross-check: {cell.subject}: the host's MemAvailable fell by {drop:.1f} MiB per instance "
                  f"while USS says {uss:.1f} MiB ({apart:.0%} apart). They can differ: the kernel reclaims page cache "
                  f"while instances start, other processes allocate or free memory meanwhile, kernel memory an "
                  f"instance costs (page tables, socket buffers, namespace and cgroup structures) is in the drop but "
                  f"in no process's USS, file pages only one process maps count in its USS but stay available to the "
                  f"host, and a guest may not have touched all its memory yet. More instances and repeats narrow it.",
                  f"memory cross-check off by {apart:.0%}")


def _figure(cell: Cell) -> str:
    return "throughput_rps" if cell.has_load else "startup_s"


def warming(cell: Cell) -> Caveat | None:
    """Within its starts, the cell's figure moved from the first trial to the last (trials_per_start)."""
    found = stats.drift_within_starts(cell.starts(_figure(cell)))
    if found is None or stats.decide(found[0], WARMING) not in ("higher", "lower"):
        return None  # a move within noise, or under 10%, or seen in one start only
    change, first, last = found
    unit = metric(_figure(cell)).unit
    trials = max(len(group) for group in cell.starts(_figure(cell)))
    word = "warming up" if (change.median > 1) == metric(_figure(cell)).higher_is_better else "slowing down"
    return Caveat("warming", cell.subject, f"{word.capitalize()} within a start: {cell.subject}: "
                  f"{fmt(first)} -> {fmt(last)} {unit} from the first to the last of {trials} trials (medians over "
                  f"starts); the first trials of a start do not measure the steady state.",
                  f"{word}: {fmt(first)} -> {fmt(last)} {unit} over {trials} trials")


def starts_differ(cell: Cell) -> Caveat | None:
    """The cell's starts disagree far more than the trials within one start do: its interval rests on
    its starts (rounds), and a few starts say little."""
    found = stats.variance_components(cell.starts(_figure(cell)))
    if found is None:
        return None
    within, between = found
    if between < STARTS_DIFFER or between < 2 * within:
        return None
    return Caveat("starts_differ", cell.subject, f"Starts differ: {cell.subject}: from one start to the next its "
                  f"{metric(_figure(cell)).label} moves by about {between:.0%}, within a start by {within:.0%}; the "
                  f"interval rests on its {cell.round_count} starts: more rounds narrow it, longer trials do not.",
                  f"starts differ by ~{between:.0%} (within a start {within:.0%})")


def discarded(cell: Cell) -> Caveat | None:
    if not cell.discarded:
        return None
    rounds = sorted({trial.repeat + 1 for trial in cell.discarded})
    return Caveat("discarded", cell.subject, f"{len(cell.discarded)} trial(s) of {cell.subject} set aside and "
                  f"measured again (round {', '.join(map(str, rounds))}): {cell.discarded[0].error}",
                  f"{len(cell.discarded)} measured again", "note")


def single_repeat(cell: Cell) -> Caveat | None:
    if cell.round_count != 1 or not cell.has_load:
        return None
    return Caveat("single_repeat", cell.subject, f"Only 1 round for {cell.subject}: its interval has zero width and "
                  f"says nothing about spread; its verdicts stay undecided.", "1 round", "note")


CELL_CHECKS: tuple[Callable[[Cell], Caveat | None], ...] = (noisy, failed, busy_machine, stall, request_errors,
                                                             generator_bound, warming, starts_differ, discarded,
                                                             memory_mismatch, single_repeat)
