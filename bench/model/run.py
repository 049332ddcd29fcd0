"""A run: its layers, its cells in display order, their overhead against the baseline, its caveats.

A run may hold several apps (python, nginx, a user's image): each app's cells compare against the
baseline of the same app, and labels name the app only then."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from bench import stats
from bench.model.about import RunInfo
from bench.model.cell import Cell, LayerKey
from bench.model.cell_figures import ProcessTick
from bench.model.colours import layer_colour
from bench.model.figures import median_of
from bench.model.fixed import LayerCost, layer_cost
from bench.model.overhead import HEADLINE_LOAD_METRICS, Overhead, Pairing
from bench.records import AppSpecRecord
from bench.results import FIRST_APP, LayerRecord, RunRecord, TrialRecord, load_run
from bench.trial_files import UnreadableFile, file_problems, read_array, read_csv
from bench.roles import STANDARD, Role
from bench.vocabulary import Caveat, cell_label



def _generic_layer(setup: str, variant: str, order: int, app: str = FIRST_APP) -> LayerRecord:
    """A layer the run did not describe (a hand-edited or partial run.json): its name only."""
    return LayerRecord(setup=setup, variant=variant, order=order, app=app)


def _unreadable(trial: TrialRecord, relative: str, reason: str) -> Caveat:
    subject = cell_label(trial.setup, trial.variant, trial.workload)
    return Caveat("unreadable", subject, f"Unreadable file {relative[:200]!r} of {subject}, repeat {trial.repeat + 1}: "
                  f"{reason}. Its charts leave that trial out.", "unreadable file")


class Run:
    """A stored run as every output sees it: what it was (`info`), its folder, layers, cells,
    overhead, caveats, and the raw files of its trials. The stored record stays inside the model."""

    def __init__(self, record: RunRecord, run_dir: Path):
        self._record = record
        self.run_dir = Path(run_dir)
        self.unreadable_met: dict[str, Caveat] = {}  # by file: problems the charts met reading files (in any process)

    @cached_property
    def unreadable_files(self) -> dict[str, Caveat]:
        """Raw trial files that cannot be used (corrupt, a pickle, outside the run folder), found
        from their headers; by file. Their trials' stored figures still count; charts leave them out."""
        found = {}
        for trial in self._record.trials:
            named = trial.files.named()
            for name, problem in file_problems(self.run_dir, named).items():
                found[named[name]] = _unreadable(trial, named[name], problem)
        return found

    def note_unreadable(self, trial: TrialRecord, error: UnreadableFile) -> None:
        """A chart could not read a file of this trial: report it like the ones found up front."""
        if error.relative not in self.unreadable_files:
            self.unreadable_met.setdefault(error.relative, _unreadable(trial, error.relative, error.reason))

    @classmethod
    def load(cls, run_dir: Path) -> "Run":
        return cls(load_run(run_dir), Path(run_dir))

    def with_trials(self, trials: list[TrialRecord]) -> "Run":
        """The same run with more trials (the live view: the plan's run and the trials ended since)."""
        return Run(self._record.model_copy(update={"trials": [*self._record.trials, *trials]}), self.run_dir)

    @cached_property
    def info(self) -> RunInfo:
        """What the run was: id, status, scenario, machine, settings (bench.model.about.RunInfo)."""
        record = self._record
        return RunInfo(record.run_id, record.effective_status(), record.status, record.created_at, record.finished_at,
                       tuple(record.command_line), record.seed, record.scenario, record.machine,
                       record.pinning, record.split, tuple(record.skipped),
                       tuple(dict.fromkeys(t.setup for t in record.trials)), len(record.trials),
                       len(record.ok_trials()))

    def latencies_ms(self, trial: TrialRecord) -> np.ndarray:
        """A load trial's raw client latencies (ms, one per request); empty when it has none, or when
        its file is unreadable (then the run's caveats report it)."""
        if trial.files.latency_ms is None:
            return np.array([])
        try:
            return read_array(self.run_dir, trial.files.latency_ms)
        except UnreadableFile as error:
            self.note_unreadable(trial, error)
            return np.array([])

    def process_samples(self, trial: TrialRecord) -> list[ProcessTick] | None:
        """A trial's sampler ticks (its processes.csv), one per process and tick; a row whose figures
        are not numbers is left out. None when it has none, or when the file is unreadable (then the
        run's caveats report it)."""
        if trial.files.processes is None:
            return None
        try:
            rows = read_csv(self.run_dir, trial.files.processes)
        except UnreadableFile as error:
            self.note_unreadable(trial, error)
            return None
        return [tick for tick in map(ProcessTick.of_row, rows) if tick is not None]

    @property
    def run_id(self) -> str:
        return self._record.run_id

    @property
    def seed(self) -> int:
        return self._record.seed

    @cached_property
    def apps(self) -> list[str]:
        """Every app with trials, in the scenario's order (then as they ran)."""
        ran = list(dict.fromkeys(t.app for t in self._record.trials))
        scenario = self._record.scenario
        specs = scenario.apps or [scenario.app or AppSpecRecord()]
        named = [spec.image or spec.name for spec in specs]
        return [app for app in named if app in ran] + [app for app in ran if app not in named]

    @property
    def multi_app(self) -> bool:
        """True when the run holds several apps: labels then name the app."""
        return len(self.apps) > 1

    @cached_property
    def layers(self) -> list[LayerRecord]:
        """Every setup variant (per app) with trials: by app, then the baseline first, then by declared
        order, then as they ran."""
        described = {(layer.setup, layer.variant, layer.app): layer for layer in self._record.layers}
        any_app = {(layer.setup, layer.variant): layer for layer in self._record.layers}
        seen = list(dict.fromkeys((t.setup, t.variant, t.app) for t in self._record.trials))
        # A layer described for another app only (a hand-edited run): its words, this app's name.
        layers = [described.get(key) or (any_app[key[:2]].model_copy(update={"app": key[2]}) if key[:2] in any_app
                                         else _generic_layer(key[0], key[1], 50 + index, key[2]))
                  for index, key in enumerate(seen)]
        position = {key: index for index, key in enumerate(seen)}
        app_rank = {app: index for index, app in enumerate(self.apps)}
        return sorted(layers, key=lambda layer: (app_rank.get(layer.app, 0), not layer.baseline, layer.order,
                                                 position[(layer.setup, layer.variant, layer.app)]))

    @property
    def prepared_layers(self) -> list[LayerRecord]:
        """Every layer the run prepared, measured or not yet: by app, baseline first, then declared order."""
        apps = list(dict.fromkeys(layer.app for layer in self._record.layers))
        return sorted(self._record.layers, key=lambda layer: (apps.index(layer.app), not layer.baseline, layer.order))

    def colour(self, setup: str, variant: str, app: str | None = None) -> str:
        """The layer's hue in every chart, table and panel (bench.model.colours)."""
        return layer_colour(self, setup, variant, app)

    def layer(self, setup: str, variant: str, app: str | None = None) -> LayerRecord:
        for layer in self.layers:
            if (layer.setup, layer.variant) == (setup, variant) and app in (None, layer.app):
                return layer
        return _generic_layer(setup, variant, 99)

    def layer_key_of(self, layer: LayerRecord) -> LayerKey:
        return LayerKey(layer.setup, layer.variant, layer.app if self.multi_app else None)

    @property
    def layer_keys(self) -> list[LayerKey]:
        """One key per layer: (setup, variant, app when the run holds several apps)."""
        return [self.layer_key_of(layer) for layer in self.layers]

    @property
    def baseline(self) -> str | None:
        """The setup every ratio is taken against (bare, as its setup declares), if it ran."""
        return next((layer.setup for layer in self._record.layers if layer.baseline), None)

    @cached_property
    def roles(self) -> dict[str, Role]:
        """Every role the run's layers declared (standard ones by default), by key."""
        found = dict(STANDARD)
        for layer in self._record.layers:
            for key, data in layer.roles.items():
                found[key] = Role.from_dict({**data.stored(), "key": key})
        return found

    @cached_property
    def workloads(self) -> list[str]:
        order = {w.name: i for i, w in enumerate(self._record.scenario.workloads or [])}
        names = list(dict.fromkeys(t.workload for t in self._record.trials))
        # Density trials are named name-xN: they sort with their workload.
        return sorted(names, key=lambda name: (order.get(name, order.get(name.rsplit("-x", 1)[0], 99)),
                                                names.index(name)))

    @cached_property
    def cells(self) -> list[Cell]:
        """Every cell, by workload (scenario order), then by layer (by app, baseline first)."""
        groups: dict[tuple[str, str, str, str], list[TrialRecord]] = {}
        for trial in self._record.trials:
            groups.setdefault((trial.setup, trial.variant, trial.workload, trial.app), []).append(trial)
        layer_rank = {(layer.setup, layer.variant, layer.app): index for index, layer in enumerate(self.layers)}
        workload_rank = {name: index for index, name in enumerate(self.workloads)}
        keys = sorted(groups, key=lambda key: (workload_rank[key[2]], layer_rank[(key[0], key[1], key[3])]))
        return [Cell(setup, variant, workload, groups[(setup, variant, workload, app)], self.seed, app, self.multi_app)
                for setup, variant, workload, app in keys]

    def cell(self, setup: str, variant: str, workload: str, app: str | None = None) -> Cell | None:
        """The cell of a setup variant under a workload; of `app` (None: the one app of the run)."""
        return next((c for c in self.cells if c.key[:3] == (setup, variant, workload) and app in (None, c.app)), None)

    def cell_at(self, key: LayerKey, workload: str) -> Cell | None:
        """The cell a chart's series (a layer key) has under a workload."""
        return self.cell(key.setup, key.variant, workload, key.app)

    @cached_property
    def layer_costs(self) -> list[LayerCost]:
        """Per layer (display order, per app): what one more instance costs and what its engine costs once."""
        return [layer_cost(self.layer_key_of(layer), self.cells_of(layer.setup, layer.variant, layer.app))
                for layer in self.layers]

    def layer_cost(self, setup: str, variant: str, app: str | None = None) -> LayerCost:
        return next(cost for cost in self.layer_costs if (cost.setup, cost.variant) == (setup, variant)
                    and (app is None or cost.app in (None, app)))  # a run of one app keys its layers without it

    def trials_at(self, key: LayerKey, workload: str | None = None) -> list[TrialRecord]:
        """Ok trials of a chart's series (a layer key), of one workload or all."""
        return self.trials(key.setup, key.variant, workload, key.app)

    def cells_of(self, setup: str, variant: str, app: str | None = None) -> list[Cell]:
        return [c for c in self.cells if (c.setup, c.variant) == (setup, variant) and app in (None, c.app)]

    def trials(self, setup: str, variant: str, workload: str | None = None, app: str | None = None
               ) -> list[TrialRecord]:
        """Ok trials of one layer (of every workload when workload is None, of every app when app
        is None), in the order they ran."""
        return [t for t in self._record.ok_trials() if (t.setup, t.variant) == (setup, variant)
                and (workload is None or t.workload == workload) and app in (None, t.app)]

    @property
    def sampler_cpu_fraction(self) -> float | None:
        # Load trials only: idle and density trials read USS/PSS on every tick on purpose.
        return median_of(t.sampler.own_cpu_fraction for t in self._record.ok_trials() if t.kind == "load")

    @property
    def min_effect(self) -> float:
        """The smallest change the run's scenario calls a difference (bench.stats.decide)."""
        value = self._record.scenario.min_effect
        return float(value) if isinstance(value, (int, float)) and 0 < value < 1 else stats.DEFAULT_MIN_EFFECT

    @cached_property
    def overhead(self) -> list[Overhead]:
        """Every non-baseline cell against the baseline's cell of the same app and workload, per
        metric (paired by round), then start-up pooled per setup variant and app."""
        if self.baseline is None or len({c.setup for c in self.cells}) < 2:
            return []
        paired = Pairing(self.cells, self.baseline, self.seed, self.multi_app, self.min_effect)
        return paired.cell_rows() + paired.startup_rows()

    def round_ratios(self, cell: Cell, metric_key: str) -> list[float]:
        """The cell's per-round ratios to the baseline's cell of the same app and workload (the pairs
        its overhead rests on); empty for a baseline cell, or without a baseline."""
        return Pairing(self.cells, self.baseline, self.seed, self.multi_app, self.min_effect).round_ratios(
            cell, metric_key)

    @property
    def headline_overhead(self) -> list[Overhead]:
        """The verdicts a run is about: the request path of every load workload (throughput, p99, CPU
        per request), memory at rest, and start-up. `repeat: auto` and a budget stop once all settle."""
        idle = {cell.workload for cell in self.cells if cell.kind == "idle"}
        return [row for row in self.overhead if row.metric in HEADLINE_LOAD_METRICS and row.workload not in idle
                or row.metric == "memory_pss_mb" and row.workload in idle or row.metric == "startup_s"]

    @cached_property
    def by_app(self) -> list:
        """In a run of several apps: each layer under each workload with every app side by side
        (bench.model.by_app.LayerByApp); empty otherwise."""
        from bench.model.by_app import layers_by_app

        return layers_by_app(self)

    def doubts(self) -> list:
        """The caveats grouped: one line per kind of doubt, the most threatening first
        (bench.model.doubts.Doubt)."""
        from bench.model.doubts import group

        return group(self.caveats(), self)

    def caveats(self) -> list[Caveat]:
        """Everything a reader must know before trusting a figure, one per cell and kind (the tables'
        flags, the JSON); `doubts()` groups them for the lines a reader reads first."""
        from bench.model.run_caveats import run_caveats

        return run_caveats(self, self._record)
