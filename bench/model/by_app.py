"""The same layer under different apps, side by side: what share of each app's request path the
layer costs. A layer's work per request (a proxy's copies, a guest kernel's network stack) does not
grow with the app's own work, so it weighs less on a slow app than on a fast one. Every ratio is taken
against the baseline of the same app under the same workload (`Run.overhead`)."""

from __future__ import annotations

from dataclasses import dataclass

from bench import stats
from bench.model.cell import Cell
from bench.vocabulary import finite, label


@dataclass(frozen=True)
class AppShare:
    """One app in one layer under one workload, against its own baseline."""

    app: str
    throughput: stats.Estimate | None  # the layer's throughput / the baseline's (same app)
    cpu: stats.Estimate | None  # the layer's host CPU per request / the baseline's
    base_cpu_us: float | None  # the app's own CPU per request at the baseline (median, µs)
    layer_cpu_us: float | None  # every process of the layer per request (median, µs)

    @property
    def added_cpu_us(self) -> float | None:
        """CPU per request the layer adds (difference of medians, µs)."""
        if finite(self.base_cpu_us) and finite(self.layer_cpu_us):
            return self.layer_cpu_us - self.base_cpu_us  # type: ignore[operator]
        return None

    @property
    def layer_share(self) -> float | None:
        """The layer's share of the request's CPU in this layer: added / total."""
        added = self.added_cpu_us
        if added is None or not finite(self.layer_cpu_us) or self.layer_cpu_us <= 0:  # type: ignore[operator]
            return None
        return added / self.layer_cpu_us  # type: ignore[operator]

    def as_dict(self) -> dict:
        return {"app": self.app, "throughput_ratio": self.throughput.as_dict() if self.throughput else None,
                "cpu_ratio": self.cpu.as_dict() if self.cpu else None, "base_cpu_us_per_request": self.base_cpu_us,
                "layer_cpu_us_per_request": self.layer_cpu_us, "added_cpu_us_per_request": self.added_cpu_us,
                "layer_share_of_cpu": self.layer_share}


@dataclass(frozen=True)
class LayerByApp:
    """One non-baseline layer under one workload, one entry per app."""

    setup: str
    variant: str
    workload: str
    entries: list[AppShare]

    @property
    def label(self) -> str:
        return label(self.setup, self.variant)

    def as_dict(self) -> dict:
        return {"setup": self.setup, "variant": self.variant, "workload": self.workload, "label": self.label,
                "apps": [entry.as_dict() for entry in self.entries]}


def _cpu(cell: Cell | None) -> float | None:
    return cell.median("cpu_us_per_request") if cell is not None else None


def layers_by_app(run) -> list[LayerByApp]:
    """For a run of several apps (a bench.model.Run): each layer under each load workload, every app
    side by side. Empty for a run of one app or without a baseline."""
    if not run.multi_app or run.baseline is None:
        return []
    ratios = {(o.setup, o.variant, o.workload, o.app, o.metric): o.ratio for o in run.overhead}
    rows = []
    for workload in run.workloads:
        layers = list(dict.fromkeys((c.setup, c.variant) for c in run.cells
                                    if c.workload == workload and c.has_load and c.setup != run.baseline))
        for setup, variant in layers:
            entries = []
            for app in run.apps:
                cell = run.cell(setup, variant, workload, app)
                base = next((c for c in run.cells if (c.setup, c.workload, c.app) == (run.baseline, workload, app)), None)
                if cell is None or not cell.has_load:
                    continue
                entries.append(AppShare(app, ratios.get((setup, variant, workload, app, "throughput_rps")),
                                        ratios.get((setup, variant, workload, app, "cpu_us_per_request")),
                                        _cpu(base), _cpu(cell)))
            if len(entries) > 1:
                rows.append(LayerByApp(setup, variant, workload, entries))
    return rows
