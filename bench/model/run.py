"""A run: its layers, its cells in display order, their overhead against the baseline, its caveats."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bench import stats
from bench.model.cell import Cell
from bench.model.figures import median_of, sub_seed
from bench.results import LayerRecord, RunRecord, TrialRecord, UnreadableFile, file_problems, load_run
from bench.roles import STANDARD, Role
from bench.vocabulary import HEADLINE_METRICS, NO_DIFFERENCE, Caveat, cell_label, label, verdict

STARTUP_WORKLOAD = "start-up"  # start-up overhead belongs to a setup variant, not to one workload


@dataclass(frozen=True)
class Overhead:
    """One cell's figure as a ratio to the baseline's, with its interval and its verdict."""

    setup: str
    variant: str
    workload: str
    metric: str
    ratio: stats.Estimate
    verdict: str

    @property
    def label(self) -> str:
        return label(self.setup, self.variant)

    @property
    def same(self) -> bool:
        return self.verdict == NO_DIFFERENCE



def _generic_layer(setup: str, variant: str, order: int) -> LayerRecord:
    """A layer the run did not describe (a hand-edited or partial run.json): its name only."""
    return LayerRecord(setup=setup, variant=variant, order=order)


def _unreadable(trial: TrialRecord, relative: str, reason: str) -> Caveat:
    subject = cell_label(trial.setup, trial.variant, trial.workload)
    return Caveat("unreadable", subject, f"Unreadable file {relative[:200]!r} of {subject}, repeat {trial.repeat + 1}: "
                  f"{reason}. Its charts leave that trial out.", "unreadable file")


class Run:
    """A stored run as every output sees it: record, folder, layers, cells, overhead, caveats."""

    def __init__(self, record: RunRecord, run_dir: Path):
        self.record = record
        self.run_dir = Path(run_dir)
        self._unreadable_found: dict[str, Caveat] = {}  # by file: problems the charts met reading files

    @cached_property
    def unreadable_files(self) -> dict[str, Caveat]:
        """Raw trial files that cannot be used (corrupt, a pickle, outside the run folder), found
        from their headers; by file. Their trials' stored figures still count; charts leave them out."""
        found = {}
        for trial in self.record.trials:
            for name, problem in file_problems(self.run_dir, trial).items():
                found[trial.files[name]] = _unreadable(trial, trial.files[name], problem)
        return found

    def note_unreadable(self, trial: TrialRecord, error: UnreadableFile) -> None:
        """A chart could not read a file of this trial: report it like the ones found up front."""
        if error.relative not in self.unreadable_files:
            self._unreadable_found.setdefault(error.relative, _unreadable(trial, error.relative, error.reason))

    @classmethod
    def load(cls, run_dir: Path) -> "Run":
        return cls(load_run(run_dir), Path(run_dir))

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def seed(self) -> int:
        return self.record.seed

    @cached_property
    def layers(self) -> list[LayerRecord]:
        """Every setup variant with trials, the baseline first, then by declared order, then as they ran."""
        described = {(layer.setup, layer.variant): layer for layer in self.record.layers}
        seen = list(dict.fromkeys((t.setup, t.variant) for t in self.record.trials))
        layers = [described.get(key) or _generic_layer(*key, order=50 + index) for index, key in enumerate(seen)]
        position = {key: index for index, key in enumerate(seen)}
        return sorted(layers, key=lambda layer: (not layer.baseline, layer.order, position[(layer.setup, layer.variant)]))

    def layer(self, setup: str, variant: str) -> LayerRecord:
        for layer in self.layers:
            if (layer.setup, layer.variant) == (setup, variant):
                return layer
        return _generic_layer(setup, variant, 99)

    @property
    def layer_keys(self) -> list[tuple[str, str]]:
        return [(layer.setup, layer.variant) for layer in self.layers]

    @property
    def baseline(self) -> str | None:
        """The setup every ratio is taken against (bare, as its setup declares), if it ran."""
        return next((layer.setup for layer in self.record.layers if layer.baseline), None)

    @cached_property
    def roles(self) -> dict[str, Role]:
        """Every role the run's layers declared (standard ones by default), by key."""
        found = dict(STANDARD)
        for layer in self.record.layers:
            for key, data in layer.roles.items():
                found[key] = Role.from_dict({**data, "key": key})
        return found

    @cached_property
    def workloads(self) -> list[str]:
        order = {w.get("name"): i for i, w in enumerate(self.record.scenario.get("workloads", []))}
        names = list(dict.fromkeys(t.workload for t in self.record.trials))
        # Density trials are named name-xN: they sort with their workload.
        return sorted(names, key=lambda name: (order.get(name, order.get(name.rsplit("-x", 1)[0], 99)),
                                                names.index(name)))

    @cached_property
    def cells(self) -> list[Cell]:
        """Every cell, by workload (scenario order), then by layer (baseline first)."""
        groups: dict[tuple[str, str, str], list[TrialRecord]] = {}
        for trial in self.record.trials:
            groups.setdefault((trial.setup, trial.variant, trial.workload), []).append(trial)
        layer_rank = {key: index for index, key in enumerate(self.layer_keys)}
        workload_rank = {name: index for index, name in enumerate(self.workloads)}
        keys = sorted(groups, key=lambda key: (workload_rank[key[2]], layer_rank[key[:2]]))
        return [Cell(*key, groups[key], self.seed) for key in keys]

    def cell(self, setup: str, variant: str, workload: str) -> Cell | None:
        return next((c for c in self.cells if c.key == (setup, variant, workload)), None)

    def cells_of(self, setup: str, variant: str) -> list[Cell]:
        return [c for c in self.cells if c.layer_key == (setup, variant)]

    def trials(self, setup: str, variant: str, workload: str | None = None) -> list[TrialRecord]:
        """Ok trials of one layer (of every workload when workload is None), in the order they ran."""
        return [t for t in self.record.ok_trials() if (t.setup, t.variant) == (setup, variant)
                and (workload is None or t.workload == workload)]

    @property
    def sampler_cpu_fraction(self) -> float | None:
        # Load trials only: idle and density trials read USS/PSS on every tick on purpose.
        return median_of(t.sampler.get("own_cpu_fraction") for t in self.record.ok_trials()
                         if t.sampler and t.kind == "load")

    @cached_property
    def overhead(self) -> list[Overhead]:
        """Every non-baseline cell against the baseline's cell of the same workload, per metric,
        then start-up pooled per setup variant."""
        baseline = self.baseline
        if baseline is None or len({c.setup for c in self.cells}) < 2:
            return []
        bases = {}
        for cell in self.cells:
            if cell.setup == baseline:
                bases.setdefault(cell.workload, cell)
        rows = []
        for cell in self.cells:
            base = bases.get(cell.workload)
            if cell.setup == baseline or base is None:
                continue
            for metric in HEADLINE_METRICS + ("latency_p50_ms",):
                mine, theirs = cell.values(metric), base.values(metric)
                if metric == "startup_s" or not mine or not theirs:
                    continue
                ratio = stats.ratio_ci(mine, theirs, sub_seed(self.seed, *cell.key, metric))
                rows.append(Overhead(cell.setup, cell.variant, cell.workload, metric, ratio, verdict(metric, ratio)))
        return rows + self._startup_overhead(baseline)

    def _startup_overhead(self, baseline: str) -> list[Overhead]:
        starts: dict[tuple[str, str], list[float]] = {}
        for cell in self.cells:
            starts.setdefault(cell.layer_key, []).extend(cell.values("startup_s"))
        base = [value for (setup, _), values in starts.items() if setup == baseline for value in values]
        rows = []
        for (setup, variant), values in starts.items():
            if setup == baseline or not values or not base:
                continue
            ratio = stats.ratio_ci(values, base, sub_seed(self.seed, setup, variant, "startup_s"))
            rows.append(Overhead(setup, variant, STARTUP_WORKLOAD, "startup_s", ratio, verdict("startup_s", ratio)))
        return rows

    def caveats(self) -> list[Caveat]:
        """Everything a reader must know before trusting a figure, in the order a report lists them."""
        record = self.record
        found = []
        status = record.effective_status()
        if status != "complete":
            found.append(Caveat("incomplete", "", f"This run is {status}: it did not finish every trial it planned "
                                f"({len(record.trials)} recorded of {len(record.order) or 'an unknown number'} "
                                f"started). Figures cover only the trials that ran."))
        for trial in record.trials:
            if trial.status == "failed":
                found.append(Caveat("failed", cell_label(trial.setup, trial.variant, trial.workload),
                                    f"Failed trial {cell_label(trial.setup, trial.variant, trial.workload)} / repeat "
                                    f"{trial.repeat + 1}: {trial.error or 'no reason recorded'}"))
        for skipped in record.skipped:
            what = skipped.get("variant") or skipped.get("setup") or "a setup"
            found.append(Caveat("skipped", str(what), f"Skipped {what}: {skipped.get('reason') or 'no reason recorded'}"))
        found += [caveat for cell in self.cells for caveat in cell.caveats() if caveat.kind != "failed"]
        found += [*self.unreadable_files.values(), *self._unreadable_found.values()]
        for layer in self.layers:
            found += [Caveat("layer", label(layer.setup, layer.variant), text) for text in layer.caveats]
        if self.cells and self.baseline is None:
            found.append(Caveat("no_baseline", "", "No baseline setup in this run: no overhead ratios can be computed."))
        return found
