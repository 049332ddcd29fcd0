"""A cell: one setup variant running one app under one workload, its trials and their statistics."""

from __future__ import annotations

import math
from functools import cached_property


from bench import stats
from bench.model.cell_figures import CpuSplit, InsideFigures, Memory, PerInstanceMemory
from bench.model.figures import median_of, seed_parts, sub_seed
from bench.model.rounds import calibrated_per_round, per_round, per_start, round_start_times
from bench.model.role_figures import RoleFigures
from bench.records import Percentiles, RoleSample
from bench.results import FIRST_APP, TrialRecord
from bench.vocabulary import MIB_BYTES
from bench.figures import metric as registered
from bench.vocabulary import Caveat, cell_label, finite, label

BUSY_MACHINE_CORES = 0.15  # other processes' CPU during a trial above this: its figures are suspect
# A stall: no request completed for at least STALL_MIN_S and STALL_MEDIANS times the median latency.
# On this 2-core host, shared and loaded, ordinary trials went up to 0.42 s without a completion on
# /hello and /cpu (bare, containers) and 0.68 s in a VM under TCG (where one /cpu takes 0.5-1.3 s):
# 1 s leaves a margin; the median factor keeps slow workloads, whose gaps are long anyway, quiet.
STALL_MIN_S = 1.0
STALL_MEDIANS = 50


class LayerKey(tuple):
    """What a chart draws as one series: (setup, variant), and the app as a third part when the run
    holds several (a run of one app never names it, so its keys stay (setup, variant)).
    `label(*key)` and `colour(run, *key)` take it as it is."""

    def __new__(cls, setup: str, variant: str, app: str | None = None) -> "LayerKey":
        return super().__new__(cls, (setup, variant) if app is None else (setup, variant, app))

    def __getnewargs__(self):
        return tuple(self)

    @property
    def setup(self) -> str:
        return self[0]

    @property
    def variant(self) -> str:
        return self[1]

    @property
    def app(self) -> str | None:
        return self[2] if len(self) > 2 else None


class Cell:
    """One setup variant running one app under one workload: its trials (ok and failed) and their
    statistics. `show_app`: the run holds several apps, so labels name this one."""

    def __init__(self, setup: str, variant: str, workload: str, trials: list[TrialRecord], seed: int,
                 app: str = FIRST_APP, show_app: bool = False):
        self.setup, self.variant, self.workload, self.app = setup, variant, workload, app
        self.show_app = show_app
        self.trials = trials
        self.seed = seed

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.setup, self.variant, self.workload, self.app

    @property
    def seed_parts(self) -> tuple[str, ...]:
        """The cell's part of a figure's seed: the python app's cells keep the seeds runs had before apps."""
        return seed_parts(self.setup, self.variant, self.workload, self.app)

    @property
    def shown_app(self) -> str | None:
        return self.app if self.show_app else None

    @property
    def layer_key(self) -> LayerKey:
        return LayerKey(self.setup, self.variant, self.shown_app)

    @property
    def label(self) -> str:
        return label(self.setup, self.variant, self.shown_app)

    @property
    def subject(self) -> str:
        return cell_label(self.setup, self.variant, self.workload, self.shown_app)

    @cached_property
    def ok(self) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.status == "ok"]

    @property
    def kind(self) -> str:
        return self.trials[0].kind if self.trials else "load"

    @property
    def repeats(self) -> int:
        return len(self.ok)

    @property
    def failed(self) -> int:
        return sum(1 for trial in self.trials if trial.status == "failed")

    @property
    def discarded(self) -> list[TrialRecord]:
        """Trials measured and then set aside by the runner (a busy round measured again)."""
        return [trial for trial in self.trials if trial.status == "discarded"]

    @property
    def has_load(self) -> bool:
        return any(trial.load for trial in self.ok)

    def values(self, metric: str) -> list[float]:
        """One finite value of `metric` per ok trial."""
        read = registered(metric).of
        return [value for value in (read(trial) for trial in self.ok) if finite(value)]

    def rounds(self, metric: str) -> dict[int, float]:
        """One value of `metric` per round (bench.model.rounds.per_round): the unit every interval rests on."""
        return per_round(self.ok, registered(metric).of)

    def calibrated_rounds(self, metric: str) -> dict[int, float]:
        """rounds(), each trial's figure taken per unit of the machine speed measured beside it."""
        return calibrated_per_round(self.ok, registered(metric))

    @cached_property
    def round_times(self) -> dict[int, float]:
        """When each round of this cell began (epoch seconds of its first trial)."""
        return round_start_times(self.ok)

    def starts(self, metric: str) -> list[list[float]]:
        """The values of `metric` grouped by the start they ran on, each group in the order it ran."""
        return per_start(self.ok, registered(metric).of)

    def estimate(self, metric: str) -> stats.Estimate | None:
        """Median over rounds with its interval; None when no trial has the figure."""
        values = list(self.rounds(metric).values())
        if not values:
            return None
        tag = {"throughput_rps": "throughput", "latency_p99_ms": "p99", "startup_s": "startup"}.get(metric, metric)
        return stats.median_ci(values, sub_seed(self.seed, *self.seed_parts, tag))

    @property
    def round_count(self) -> int:
        return len({trial.repeat for trial in self.ok})

    def median(self, metric: str) -> float | None:
        return median_of(self.values(metric))

    @property
    def interval_method(self) -> str:
        return stats.interval_method(self.round_count)

    @cached_property
    def latency_ms(self) -> Percentiles | None:
        loads = [trial.load for trial in self.ok if trial.load]
        if not loads:
            return None
        figures = {name: median_of(load.latency_ms.named(name) for load in loads) for name in stats.PERCENTILES}
        maxima = [value for load in loads if finite(value := load.latency_ms.max)]
        figures["max"] = max(maxima) if maxima else None  # the slowest request of any repeat: a stall shows here
        return Percentiles(**figures)

    @property
    def stalls(self) -> list[tuple[int, float]]:
        """(repeat, seconds) of every ok trial in which no request completed for a stall's length."""
        found = []
        for trial in self.ok:
            if trial.load is None:
                continue
            gap_ms, p50 = trial.load.longest_gap_ms, trial.load.latency_ms.p50
            if finite(gap_ms) and finite(p50) and gap_ms >= STALL_MIN_S * 1e3 and gap_ms >= STALL_MEDIANS * p50:
                found.append((trial.repeat, gap_ms / 1e3))
        return found

    @property
    def app_ms_p50(self) -> float | None:
        return median_of(trial.load.app_ms.p50 for trial in self.ok if trial.load)

    @property
    def cpu_us_per_request(self) -> CpuSplit | None:
        if not self.values("cpu_us_per_request"):
            return None
        return CpuSplit(user=median_of(t.cpu_us_per_request.user_us for t in self.ok if t.cpu_us_per_request),
                        sys=median_of(t.cpu_us_per_request.sys_us for t in self.ok if t.cpu_us_per_request))

    @property
    def memory_mb(self) -> Memory | None:
        """Memory of every process the setup needs, summed: PSS (adds up), USS (private), RSS (upper bound)."""
        if not self.values("memory_rss_mb"):
            return None
        return Memory(**{part: median_of((getattr(t.memory_bytes, part) or math.nan) / MIB_BYTES for t in self.ok)
                         for part in ("rss", "uss", "pss")})

    @property
    def memory_per_instance_mb(self) -> PerInstanceMemory | None:
        """Density: per instance, USS (what one more instance costs: its own pages), PSS (its fair share),
        RSS (the upper bound: shared pages counted once per process) and the host's MemAvailable drop."""
        if not any(t.memory_bytes.rss_per_instance is not None for t in self.ok):
            return None
        return PerInstanceMemory(**{part: median_of((getattr(t.memory_bytes, f"{part}_per_instance") or math.nan)
                                                    / MIB_BYTES for t in self.ok)
                                    for part in ("uss", "pss", "rss", "available_drop")})

    @cached_property
    def fixed(self):
        """The fixed-cost processes (engine daemons) over this cell's trials: a FixedCost, or None."""
        from bench.model.fixed import fixed_cost

        return fixed_cost(self.ok)

    @property
    def instances(self) -> int | None:
        return next((t.facts.instances for t in self.ok if t.facts.instances), None)

    @property
    def startup_phases_s(self) -> dict[str, float | None]:
        started = [t for t in self.ok if t.startup_phases_s]
        names = list(dict.fromkeys(name for t in started for name in t.startup_phases_s))
        return {name: median_of(t.startup_phases_s.get(name) for t in started) for name in names}

    @cached_property
    def roles(self) -> dict[str, RoleFigures]:
        """Per role: CPU per request (user, sys), RSS, USS and PSS in MiB, process count: medians."""
        roles: dict[str, RoleFigures] = {}
        for role in dict.fromkeys(role for t in self.ok for role in t.roles):
            pairs = [(t.roles.get(role) or RoleSample(), t.load.requests if t.load else 0) for t in self.ok]
            roles[role] = RoleFigures(
                cpu_user_us_per_request=median_of((r.cpu_user_s or 0) / n * 1e6 for r, n in pairs if n),
                cpu_sys_us_per_request=median_of((r.cpu_sys_s or 0) / n * 1e6 for r, n in pairs if n),
                rss_mb=median_of((r.rss_bytes or math.nan) / MIB_BYTES for r, _ in pairs),
                uss_mb=median_of((r.uss_bytes or math.nan) / MIB_BYTES for r, _ in pairs),
                pss_mb=median_of((r.pss_bytes or math.nan) / MIB_BYTES for r, _ in pairs),
                processes=median_of(r.processes or 0 for r, _ in pairs),
            )
        return roles

    @cached_property
    def inside(self) -> InsideFigures | None:
        """The app's own view, as medians: CPU per request it saw itself, its RSS, user and kernel;
        None when the app has no view from inside (or never answered)."""
        views = [t.inside for t in self.ok if t.inside]
        if not views:
            return None
        last = views[-1]
        return InsideFigures(cpu_us_per_request=median_of(view.cpu_us_per_request for view in views),
                             rss_mb=median_of((view.rss_bytes or 0) / MIB_BYTES for view in views),
                             uid=last.uid, kernel=last.kernel, ppid=last.ppid,
                             requests_served=median_of(view.requests_served for view in views))

    @property
    def errors(self) -> list[str]:
        return sorted({trial.error for trial in self.trials if trial.error})

    @property
    def errors_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trial in self.ok:
            for kind, count in (trial.load.errors if trial.load else {}).items():
                counts[kind] = counts.get(kind, 0) + count
        return counts

    def _spread_values(self) -> list[float]:
        return list(self.rounds("throughput_rps" if self.has_load else "startup_s").values())

    @property
    def spread(self) -> float:
        return stats.spread(self._spread_values())

    @property
    def noisy(self) -> bool:
        return stats.is_noisy(self._spread_values())

    @property
    def foreign_cpu_cores(self) -> float | None:
        # The worst repeat, not the median: one disturbed repeat is enough to distrust a cell.
        return max((t.host.foreign_cpu_cores or 0.0 for t in self.ok), default=None)

    @property
    def typical_foreign_cpu_cores(self) -> float | None:
        """Other processes' CPU during the cell's trials, the median over them: how busy the machine
        was for the cell as a whole (the gate compares it between two runs)."""
        return median_of(t.host.foreign_cpu_cores or 0.0 for t in self.ok)

    @property
    def busy_repeats(self) -> int:
        return sum(1 for t in self.ok if (t.host.foreign_cpu_cores or 0.0) > BUSY_MACHINE_CORES)

    @property
    def accel(self) -> str | None:
        return next((t.facts.accel for t in self.ok if t.facts.accel), None)

    def caveats(self) -> list[Caveat]:
        """What a reader must know about this cell's figures (computed here once for every output)."""
        from bench.model.caveats import CELL_CHECKS

        return [caveat for check in CELL_CHECKS if (caveat := check(self)) is not None]
