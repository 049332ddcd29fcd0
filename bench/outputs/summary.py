"""A run's summary as plain data: the JSON contract `bench show --format json` prints and other
tools read. Generated from the model (`bench.model.Run`); `SUMMARY_VERSION` changes when a
field's meaning does (new fields may appear at any version).

Units are in the keys (req/s, ms, µs per request, MiB, s). Missing figures are null, never NaN.
`memory_figures` in the summary says what each memory figure is.

Version history:
    1  first contract.
    2  `memory_per_instance_mb` is a mapping {uss, pss, rss, available_drop} (it was RSS / instances,
       a number); the headline memory metric in `overhead` is memory_pss_mb (it was memory_rss_mb);
       `roles` carry pss_mb. Stored runs need no migration: summaries are computed from their trials.
       Later fields (no version change: they only add): `apps`, `app` on every result and overhead row,
       and `by_app` (a run of several apps: each layer's ratios to the same app's baseline, side by side).
       The engine's fixed cost apart from what one instance costs: each result's `fixed`, the run's
       `layer_costs`.
    3  `overhead` rows are paired over rounds: `ratio` is the geometric mean of per-round ratios with a
       Student's t interval over rounds (`ratio.method`, `ratio.n` rounds), `unpaired_ratio` the old ratio
       of medians; `state` is worse, better, same or undecided (`min_effect`), `verdict` its words (no more
       "no measurable difference"). `doubts`: the caveats grouped, one per kind, most serious first.
       Each result's interval rests on `rounds` (trials of a round combined), not on trials.
"""

from __future__ import annotations

import math

from bench import stats
from bench.model import Cell, Overhead, Run

SUMMARY_VERSION = 3

MEMORY_FIGURES = {
    "memory_mb.pss": "PSS summed over every host process the setup needs: a page shared by k processes counts 1/k "
                     "in each. Adds up across setups and instances; the headline memory figure.",
    "memory_mb.uss": "USS summed over those processes: pages no other process maps. What stopping the setup frees.",
    "memory_mb.rss": "RSS summed over those processes: every mapped page, shared ones counted once per process. "
                     "An upper bound, not additive.",
    "memory_per_instance_mb.uss": "Density: USS of every process N side-by-side instances need, divided by N: what "
                                  "one more instance costs the machine (the marginal cost).",
    "memory_per_instance_mb.pss": "Density: PSS per instance: its fair share, shared pages split among the copies.",
    "memory_per_instance_mb.rss": "Density: RSS per instance: the upper bound (shared pages counted in every copy).",
    "memory_per_instance_mb.available_drop": "Density: how far the host's MemAvailable fell with the N instances "
                                             "running, divided by N: the cross-check of the USS figure.",
    "fixed": "The setup's fixed-cost processes (an engine's daemons: dockerd, containerd), sampled over the same "
             "trials: per role pss_mb, uss_mb, rss_mb, cpu_cores (average over the window) and in total. Paid once "
             "per host however many instances run; never part of memory_mb or memory_per_instance_mb.",
}


def _estimate(estimate: stats.Estimate | None) -> dict | None:
    return estimate.as_dict() if estimate is not None else None


def cell_summary(cell: Cell) -> dict:
    """One cell's figures: medians over repeats with intervals, per role, the app's own view."""
    loads = cell.has_load
    return {
        "setup": cell.setup,
        "variant": cell.variant,
        "app": cell.app,
        "workload": cell.workload,
        "label": cell.label,
        "repeats": cell.repeats,
        "rounds": cell.round_count,
        "interval_method": cell.interval_method,
        "failed": cell.failed,
        "errors": cell.errors,
        "throughput_rps": _estimate(cell.estimate("throughput_rps")) if loads else None,
        "latency_ms": _latency(cell.latency_ms),
        "latency_p99_ms_ci": _estimate(cell.estimate("latency_p99_ms")) if loads else None,
        "app_ms_p50": cell.app_ms_p50 if loads else None,
        "cpu_us_per_request": _figures(cell.cpu_us_per_request),
        "memory_mb": _figures(cell.memory_mb),
        "memory_per_instance_mb": _figures(cell.memory_per_instance_mb),
        "instances": cell.instances,
        "startup_s": cell.median("startup_s"),
        "startup_s_ci": _estimate(cell.estimate("startup_s")),
        "startup_phases_s": cell.startup_phases_s,
        "roles": {role: figures.as_dict() for role, figures in cell.roles.items()},
        "inside": cell.inside.as_dict() if cell.inside else {},
        "errors_by_kind": cell.errors_by_kind,
        "noisy": cell.noisy,
        "spread": cell.spread,
        "foreign_cpu_cores": cell.foreign_cpu_cores,
        "busy_repeats": cell.busy_repeats,
        "accel": cell.accel,
        "fixed": _fixed(cell.fixed),
        "caveats": [caveat.as_dict() for caveat in cell.caveats()],
    }


def _latency(percentiles) -> dict | None:
    """A cell's latency percentiles as the summary has always written them (p50 ... max, no fast end)."""
    return {name: percentiles.named(name) for name in stats.PERCENTILES} if percentiles is not None else None


def _figures(figures) -> dict | None:
    """A typed block of a cell's figures (bench.model.cell_figures) as the summary writes it."""
    return figures.as_dict() if figures is not None else None


def _fixed(fixed) -> dict | None:
    if fixed is None:
        return None
    return {"roles": {role: figures.as_dict() for role, figures in fixed.roles.items()},
            "total": fixed.total.as_dict(), "trials": fixed.trials}


def layer_cost_summary(cost) -> dict:
    """One layer: per-instance memory and the fixed cost of its engine (bench.model.LayerCost)."""
    per_instance = cost.per_instance_mb.as_dict(("pss", "uss", "rss")) if cost.per_instance_mb else {}
    return {"setup": cost.setup, "variant": cost.variant, "per_instance_mb": per_instance,
            "per_instance_from": cost.per_instance_from, "fixed": _fixed(cost.fixed)}


def overhead_summary(row: Overhead) -> dict:
    return {"setup": row.setup, "variant": row.variant, "app": row.app, "workload": row.workload, "label": row.label,
            "metric": row.metric, "ratio": row.ratio.as_dict(), "state": row.state, "verdict": row.verdict,
            "min_effect": row.min_effect, "unpaired_ratio": _estimate(row.unpaired)}


def summarize(run: Run) -> dict:
    """The JSON contract of `bench show --format json` (see the module docstring)."""
    info = run.info
    return _no_nan({
        "summary_version": SUMMARY_VERSION,
        "run_id": info.run_id,
        "status": info.status,
        "scenario": info.scenario_name,
        "created_at": info.created_at,
        "machine": info.machine.stored(),
        "pinning": info.pinning.stored() if info.pinning else {},
        "seed": info.seed,
        "confidence": stats.CONFIDENCE,
        "min_effect": run.min_effect,
        "baseline": run.baseline,
        "apps": run.apps,
        "layers": [layer.model_dump() for layer in run.layers],
        "skipped": [skipped.stored() for skipped in info.skipped],
        "sampler_cpu_fraction": run.sampler_cpu_fraction,
        "results": [cell_summary(cell) for cell in run.cells],
        "overhead": [overhead_summary(row) for row in run.overhead],
        "layer_costs": [layer_cost_summary(cost) for cost in run.layer_costs],
        "by_app": [row.as_dict() for row in run.by_app],
        "doubts": [doubt.as_dict() for doubt in run.doubts()],
        "caveats": [caveat.as_dict() for caveat in run.caveats()],
        "memory_figures": MEMORY_FIGURES,
    })


def _no_nan(value):
    """NaN and infinities are not JSON: null instead, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(item) for item in value]
    return value
