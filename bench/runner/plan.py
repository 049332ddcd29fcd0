"""Planning a run: which starts and trials make a round, in which order, and when to stop adding rounds.

A round runs every (app, setup) pair once: one start whose launch is the cold start-up measured (a
`startup` workload), then every other workload on that start (`trials_per_start` times each load
workload, back to back). A VM under TCG boots once per round, not twice. Rounds are interleaved
and each round's starts are shuffled with a seeded generator (randomized multiple interleaved
trials, Abedi and Brecht, ICPE 2017): drift on a shared machine then hits every setup alike, and no
setup always follows the same neighbour (a VM's teardown, say). Per-round pairs are what the paired
ratios in bench.model rest on.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from bench.errors import SetupError
from bench.model import Run
from bench.results import FIRST_APP, RunRecord
from bench.scenario import Scenario, SetupSpec, Workload
from bench.setups.base import Pinning

MIN_ROUNDS_TO_STOP = 3  # a verdict settled on fewer rounds is not trusted to stop a run early
MIN_BUDGET_ROUNDS = 2  # a budget too small for two rounds still gets two: one round has no interval


@dataclass(frozen=True)
class PlannedTrial:
    """One planned trial: which start it belongs to, and what it runs."""

    key: str
    spec: SetupSpec
    workload: Workload  # a load workload requests the app's own path for its endpoint (url_path)
    repeat: int  # the round
    copies: int = 1  # density: how many instances run side by side
    app: str = FIRST_APP  # the app's name (bench.apps), the key of its setups in the runner
    app_in_id: bool = False  # the run has several apps: ids and keys name the app
    sample: int = 0  # the how-many-th trial of this workload in its start (trials_per_start)
    attempt: int = 0  # a round measured again (remeasure_busy): 1, 2
    start_id: str = ""  # the launch it runs on: trials with the same start_id share one start

    @property
    def workload_label(self) -> str:
        """The workload's name; density trials add how many copies ran (density-x4)."""
        return f"{self.workload.name}-x{self.copies}" if self.workload.kind == "density" else self.workload.name

    @property
    def trial_id(self) -> str:
        """A name safe as a folder: (the app, in a run of several,) setup key, workload, round, and
        the sample and attempt when there are several."""
        app = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.app) + "--" if self.app_in_id else ""
        extra = (f"-s{self.sample}" if self.sample else "") + (f"-m{self.attempt}" if self.attempt else "")
        return f"{app}{self.spec.folder_key}--{self.workload_label}--r{self.repeat}{extra}"

    @property
    def setup_key(self) -> tuple[str, str]:
        """Which prepared setup runs it: (app, setup key)."""
        return self.app, self.spec.key


def starts_for(scenario: Scenario, spec: SetupSpec, repeat: int, app=None, app_in_id: bool = False,
               attempt: int = 0) -> list[list[PlannedTrial]]:
    """The starts one round of one setup running `app` (a bench.apps.base.App; default python)
    needs; each inner list shares one launch."""
    app = app if app is not None else scenario.app_specs[0].build()
    prefix = f"{app.name}:" if app_in_id else ""
    again = f"/m{attempt}" if attempt else ""

    def trial(name: str, workload: Workload, start: str, copies: int = 1, sample: int = 0) -> PlannedTrial:
        if workload.kind == "load":
            workload = workload.for_path(app.url_path(workload.endpoint or "hello", workload.param))
        key = f"{prefix}{spec.key}/{name}/r{repeat}" + (f"/s{sample}" if sample else "") + again
        return PlannedTrial(key, spec, workload, repeat, copies, app.name, app_in_id, sample, attempt,
                            f"{prefix}{spec.key}/r{repeat}{again}/{start}")

    group: list[list[PlannedTrial]] = []
    cold, shared = [], []
    for sample in range(scenario.trials_per_start):
        for workload in scenario.workloads:
            if sample and workload.kind != "load":
                continue  # a footprint, a cold start and density are measured once per round
            if workload.kind == "startup":  # the launch is the measurement: the first trial of a start
                cold.append(workload)
            elif workload.kind == "density":  # N copies side by side: a launch of N per count
                group += [[trial(f"{workload.name}-x{count}", workload, f"x{count}", count)]
                          for count in workload.instances]
            else:
                shared.append((workload, sample))
    if scenario.start == "per_trial" or not shared:
        group += [[trial(w.name, w, "startup")] for w in cold]
        group += [[trial(w.name, w, f"{w.name}-s{sample}", sample=sample)] for w, sample in shared]
    else:  # the cold start-up, then every other workload on the same start
        group.append([trial(w.name, w, "shared") for w in cold]
                     + [trial(w.name, w, "shared", sample=sample) for w, sample in shared])
    return group


def round_starts(scenario: Scenario, pairs: list[tuple], repeat: int, attempt: int = 0) -> list[list[PlannedTrial]]:
    """Every start of one round of every (app, setup spec) pair, shuffled (seeded by the scenario's
    seed and the round) when the order is interleaved."""
    several = len(scenario.app_specs) > 1
    starts = [start for app, spec in pairs for start in starts_for(scenario, spec, repeat, app, several, attempt)]
    if scenario.order == "interleaved":
        random.Random(f"{scenario.seed}/{repeat}/{attempt}").shuffle(starts)
    return starts


def plan(scenario: Scenario, pairs: list[tuple], repeats: int, first_repeat: int = 0) -> list[list[PlannedTrial]]:
    """Every start of `repeats` rounds of every (app, setup spec) pair that can run (the app a
    bench.apps.base.App). Interleaved: round 1 of every pair (shuffled), then round 2, ...
    Sequential: all rounds of one pair, then the next."""
    rounds = range(first_repeat, first_repeat + repeats)
    if scenario.order == "interleaved":
        return [start for repeat in rounds for start in round_starts(scenario, pairs, repeat)]
    several = len(scenario.app_specs) > 1
    return [start for app, spec in pairs for repeat in rounds for start in starts_for(scenario, spec, repeat, app, several)]


def verdicts_settled(record: RunRecord) -> tuple[bool, str]:
    """Whether every headline verdict of the run so far is settled (worse, better or same), and the
    first one that is not."""
    rows = Run(record, ".").headline_overhead
    open_rows = [row for row in rows if row.state == "undecided"]
    if not rows:
        return False, "no verdict to settle"
    if open_rows:
        return False, f"{len(open_rows)} of {len(rows)} verdicts undecided (first: {open_rows[0].subject})"
    return True, f"all {len(rows)} headline verdicts settled"


def stop_after(record: RunRecord, scenario: Scenario, rounds: int, durations: list[float],
               elapsed_s: float) -> tuple[str | None, str]:
    """Whether a run of repeat: auto or a budget stops after `rounds` rounds, why (settled, target,
    budget), and the state of its verdicts. `durations`: each round's seconds so far."""
    settled, detail = verdicts_settled(record)
    if detail == "no verdict to settle":  # no baseline, or nothing beside it: interval widths decide
        settled, detail = converged(record, scenario.repeat_target)
        if rounds >= MIN_ROUNDS_TO_STOP and settled:
            return "target", detail
    elif rounds >= MIN_ROUNDS_TO_STOP and settled:
        return "settled", detail
    if scenario.budget is not None and rounds >= MIN_BUDGET_ROUNDS:
        left_s = scenario.budget - elapsed_s
        if left_s < max(durations):  # the next round would overrun the budget
            return "budget", f"{detail}; {max(left_s, 0):.0f} s of the budget left, a round takes {max(durations):.0f} s"
    return None, detail


def converged(record: RunRecord, target: float) -> tuple[bool, str]:
    """Whether every cell's interval is narrower than `target` of its median, and the widest one
    (for a run without verdicts: no baseline, or the baseline alone)."""
    widest, widest_cell = 0.0, None
    for cell in Run(record, ".").cells:
        metric = "throughput_rps" if cell.kind == "load" else "startup_s" if cell.kind == "startup" \
            else "memory_pss_mb"
        estimate = cell.estimate(metric)
        width = estimate.relative_width if estimate is not None else 0.0
        if width > widest:
            widest, widest_cell = width, cell
    return widest <= target, f"widest interval {widest:.1%} of its median ({widest_cell.subject if widest_cell else 'none'})"


def resolve_pinning(scenario: Scenario) -> Pinning:
    """The scenario's pinning, or the default (app on the last CPU, load on the others)."""
    if scenario.pinning == "auto":
        return Pinning.default()
    allowed = os.sched_getaffinity(0)
    spec = scenario.pinning
    bad = sorted(set(spec.app_cpus + spec.load_cpus) - allowed)
    if bad:
        raise SetupError(f"pinning names CPUs {bad} that this process may not use (allowed: {sorted(allowed)})")
    return Pinning(app_cpus=tuple(spec.app_cpus), load_cpus=tuple(spec.load_cpus))
