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
    workload: Workload  # a load workload requests the app's own path for its endpoint (url_path)
    repeat: int
    copies: int = 1  # density: how many instances run side by side
    app: str = "python"  # the app's name (bench.apps), the key of its setups in the runner
    app_in_id: bool = False  # the run has several apps: ids and keys name the app

    @property
    def workload_label(self) -> str:
        """The workload's name; density trials add how many copies ran (density-x4)."""
        return f"{self.workload.name}-x{self.copies}" if self.workload.kind == "density" else self.workload.name

    @property
    def trial_id(self) -> str:
        """A name safe as a folder: (the app, in a run of several,) setup key, workload, repeat."""
        app = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.app) + "--" if self.app_in_id else ""
        return f"{app}{self.spec.folder_key}--{self.workload_label}--r{self.repeat}"

    @property
    def setup_key(self) -> tuple[str, str]:
        """Which prepared setup runs it: (app, setup key)."""
        return self.app, self.spec.key


def starts_for(scenario: Scenario, spec: SetupSpec, repeat: int, app=None, app_in_id: bool = False
               ) -> list[list[PlannedTrial]]:
    """The starts one repeat of one setup running `app` (a bench.apps.base.App; default python)
    needs; each inner list shares one launch."""
    app = app if app is not None else scenario.app_specs[0].build()
    prefix = f"{app.name}:" if app_in_id else ""

    def trial(name: str, workload: Workload, copies: int = 1) -> PlannedTrial:
        if workload.kind == "load":
            workload = workload.for_path(app.url_path(workload.endpoint or "hello", workload.param))
        return PlannedTrial(f"{prefix}{spec.key}/{name}/r{repeat}", spec, workload, repeat, copies, app.name, app_in_id)

    group: list[list[PlannedTrial]] = []
    shared = []
    for workload in scenario.workloads:
        if workload.kind == "startup":  # a cold start is the measurement: always a launch of its own
            group.append([trial(workload.name, workload)])
        elif workload.kind == "density":  # N copies side by side: a launch of N per count
            group += [[trial(f"{workload.name}-x{count}", workload, count)] for count in workload.instances]
        else:
            shared.append(trial(workload.name, workload))
    if scenario.start == "per_trial":
        group += [[trial] for trial in shared]
    elif shared:
        group.append(shared)
    return group


def plan(scenario: Scenario, pairs: list[tuple], repeats: int, first_repeat: int = 0) -> list[list[PlannedTrial]]:
    """Every start of `repeats` repeats, in the scenario's order, of every (app, setup spec) pair
    that can run (the app a bench.apps.base.App).

    Interleaved: repeat 1 of every pair, then repeat 2 of every pair, ... so drift in the machine
    hits all alike. Sequential: all repeats of one pair, then the next.
    """
    several = len(scenario.app_specs) > 1
    rounds = range(first_repeat, first_repeat + repeats)
    if scenario.order == "interleaved":
        return [start for repeat in rounds for app, spec in pairs
                for start in starts_for(scenario, spec, repeat, app, several)]
    return [start for app, spec in pairs for repeat in rounds for start in starts_for(scenario, spec, repeat, app, several)]


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
