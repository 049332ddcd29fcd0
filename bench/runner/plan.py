"""Planning a run: which starts and trials, in which order, and when `repeat: auto` may stop."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.errors import SetupError
from bench.model import Run
from bench.results import RunRecord
from bench.scenario import Scenario, SetupSpec, Workload
from bench.setups.base import Pinning


@dataclass(frozen=True)
class PlannedTrial:
    """One planned trial: which start it belongs to, and what it runs."""

    key: str
    spec: SetupSpec
    workload: Workload
    repeat: int
    copies: int = 1  # density: how many instances run side by side

    @property
    def workload_label(self) -> str:
        """The workload's name; density trials add how many copies ran (density-x4)."""
        return f"{self.workload.name}-x{self.copies}" if self.workload.kind == "density" else self.workload.name

    @property
    def trial_id(self) -> str:
        """A name safe as a folder: setup key, workload, repeat."""
        return f"{self.spec.folder_key}--{self.workload_label}--r{self.repeat}"


def starts_for(scenario: Scenario, spec: SetupSpec, repeat: int) -> list[list[PlannedTrial]]:
    """The starts one repeat of one setup needs; each inner list shares one launch."""
    group: list[list[PlannedTrial]] = []
    shared = []
    for workload in scenario.workloads:
        if workload.kind == "startup":  # a cold start is the measurement: always a launch of its own
            group.append([PlannedTrial(f"{spec.key}/{workload.name}/r{repeat}", spec, workload, repeat)])
        elif workload.kind == "density":  # N copies side by side: a launch of N per count
            group += [[PlannedTrial(f"{spec.key}/{workload.name}-x{count}/r{repeat}", spec, workload, repeat, count)]
                      for count in workload.instances]
        else:
            shared.append(PlannedTrial(f"{spec.key}/{workload.name}/r{repeat}", spec, workload, repeat))
    if scenario.start == "per_trial":
        group += [[trial] for trial in shared]
    elif shared:
        group.append(shared)
    return group


def plan(scenario: Scenario, specs: list[SetupSpec], repeats: int, first_repeat: int = 0) -> list[list[PlannedTrial]]:
    """Every start of `repeats` repeats, in the scenario's order.

    Interleaved: repeat 1 of every setup, then repeat 2 of every setup, ... so drift in the
    machine hits all setups alike. Sequential: all repeats of one setup, then the next.
    """
    rounds = range(first_repeat, first_repeat + repeats)
    if scenario.order == "interleaved":
        return [start for repeat in rounds for spec in specs for start in starts_for(scenario, spec, repeat)]
    return [start for spec in specs for repeat in rounds for start in starts_for(scenario, spec, repeat)]


def converged(record: RunRecord, target: float) -> tuple[bool, str]:
    """Whether every cell's interval is narrower than `target` of its median, and the widest one."""
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
