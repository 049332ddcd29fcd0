"""Fixed costs apart from per-instance costs.

An engine's daemons (dockerd, containerd) cost memory and CPU whether one instance runs or ten:
the runner samples them over each trial into the trial's `fixed` block. Here they become, per
cell and per layer, "what having the engine at all costs", next to "what one more instance
costs" (the instance's own processes, the figures every other table shows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.model.cell_figures import Memory
from bench.model.figures import median_of
from bench.model.role_figures import FixedFigures
from bench.records import RoleSample
from bench.results import TrialRecord
from bench.vocabulary import MIB_BYTES, finite

MEMORY_PARTS = ("pss", "uss", "rss")


@dataclass(frozen=True)
class FixedCost:
    """Medians over trials of the fixed-cost processes: per role and in total."""

    roles: dict[str, FixedFigures]  # by role
    total: FixedFigures  # medians of per-trial sums (no process count)
    trials: int

    @property
    def pss_mb(self) -> float | None:
        return self.total.pss_mb


@dataclass(frozen=True)
class LayerCost:
    """One layer's memory split: per instance (its own processes) and fixed (its engine's daemons)."""

    key: tuple  # the layer's bench.model.LayerKey: (setup, variant[, app when the run holds several])
    per_instance_mb: Memory | None = None  # None: no workload of the layer measured its memory
    per_instance_from: str = ""  # the workload(s) the per-instance figure comes from
    fixed: FixedCost | None = None

    @property
    def setup(self) -> str:
        return self.key[0]

    @property
    def variant(self) -> str:
        return self.key[1]

    @property
    def app(self) -> str | None:
        return self.key[2] if len(self.key) > 2 else None


def _seconds(trial: TrialRecord) -> float | None:
    if len(trial.window_t) == 2 and trial.window_t[1] > trial.window_t[0]:
        return trial.window_t[1] - trial.window_t[0]
    return None


def _role_figures(figures: RoleSample, seconds: float | None) -> dict[str, float | None]:
    cpu = (figures.cpu_user_s or 0.0) + (figures.cpu_sys_s or 0.0)
    memory = {part: getattr(figures, f"{part}_bytes") for part in MEMORY_PARTS}
    return {**{f"{part}_mb": value / MIB_BYTES if finite(value) else None for part, value in memory.items()},
            "cpu_cores": cpu / seconds if seconds else None, "processes": figures.processes}


def _sum(values: list[float | None]) -> float:
    return math.nan if not values or any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]


def fixed_cost(trials: list[TrialRecord]) -> FixedCost | None:
    """The fixed cost seen by these (ok) trials, or None when none sampled a fixed-cost process."""
    sampled = [t for t in trials if t.fixed]
    if not sampled:
        return None
    per_trial = [{role: _role_figures(figures, _seconds(t)) for role, figures in t.fixed.items()} for t in sampled]
    roles = {}
    for role in dict.fromkeys(role for trial in per_trial for role in trial):
        rows = [trial[role] for trial in per_trial if role in trial]
        roles[role] = FixedFigures(**{key: median_of(row[key] for row in rows) for key in rows[0]})
    total = FixedFigures(**{key: median_of(_sum([figures[key] for figures in trial.values()]) for trial in per_trial)
                            for key in ("pss_mb", "uss_mb", "rss_mb", "cpu_cores")})
    return FixedCost(roles, total, len(sampled))


def layer_cost(key: tuple, cells: list) -> LayerCost:
    """A layer's per-instance memory (its idle footprint when it ran one, else every measured
    workload's) and its fixed cost over all its trials; `cells` are the layer's bench.model.Cell."""
    measured = [cell for cell in cells if cell.memory_mb and cell.memory_per_instance_mb is None]
    idle = [cell for cell in measured if cell.kind == "idle"]
    chosen = idle or measured
    per_instance = Memory(**{part: median_of(getattr(cell.memory_mb, part) for cell in chosen)
                             for part in MEMORY_PARTS}) if chosen else None
    trials = [trial for cell in cells for trial in cell.ok]
    return LayerCost(key, per_instance, ", ".join(cell.workload for cell in chosen), fixed_cost(trials))
