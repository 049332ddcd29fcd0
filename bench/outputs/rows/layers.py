"""Rows per layer: what one more instance costs against its engine, its verdicts against the
baseline, each app's cost in it, and the words the report says about it."""

from __future__ import annotations

from dataclasses import dataclass

from bench.figures import interval_text, metric, ratio_text
from bench.model import Cell, Run
from bench.model.memory_cake import REST, memory_slices
from bench.outputs.rows.cells import figure
from bench.roles import APP
from bench.vocabulary import MISSING, finite, fmt, fmt_interval, label

MIN_SHOWN_US = 0.5  # a helper's CPU per request below this is noise of the sampler's 10 ms ticks


@dataclass(frozen=True)
class LayerCostRow:
    """A layer: what one more instance costs (its own processes) against what its engine costs once."""

    label: str
    colour: str
    pss: str  # MiB per instance
    uss: str
    source: str  # the workload(s) the per-instance figure comes from
    fixed_pss: str  # MiB, the engine's daemons together
    fixed_uss: str
    fixed_cpu: str  # cores, on average while its trials ran
    fixed_roles: str  # the daemons' labels
    fixed_role_keys: str  # their short names: dockerd, containerd
    fixed_role_pss: str  # each daemon's PSS, by short name
    has_fixed: bool


def layer_cost_rows(run: Run) -> list[LayerCostRow]:
    rows = []
    for cost in run.layer_costs:
        per_instance, fixed = cost.per_instance_mb, cost.fixed
        names = {key: run.roles[key].label if key in run.roles else key for key in (fixed.roles if fixed else {})}
        rows.append(LayerCostRow(
            label(*cost.key), run.colour(*cost.key),
            figure("memory_pss_mb", per_instance.pss if per_instance else None),
            figure("memory_pss_mb", per_instance.uss if per_instance else None), cost.per_instance_from or MISSING,
            figure("memory_pss_mb", fixed.total.pss_mb if fixed else None),
            figure("memory_pss_mb", fixed.total.uss_mb if fixed else None),
            fmt(fixed.total.cpu_cores if fixed else None, 3), ", ".join(names.values()) or "none", ", ".join(names),
            ", ".join(f"{key} {fmt(figures.pss_mb, 0)}" for key, figures in (fixed.roles if fixed else {}).items()),
            fixed is not None))
    return rows


@dataclass(frozen=True)
class VerdictRow:
    """A figure of a layer (and workload) as a ratio to the baseline's, judged: worse, better, same or
    undecided, with the ratio's interval paired over rounds."""

    label: str
    colour: str
    setup: str
    variant: str
    app: str
    workload: str
    metric_key: str
    metric: str  # the metric's title
    metric_label: str
    better: str  # which way is better: "higher is better"
    value: float  # the ratio itself (a bar's length)
    figure: str  # 2.15×
    interval: str  # [1.85–2.50]
    ratio: str  # 2.15 [1.85–2.50]
    state: str
    verdict: str  # the state in words, with the interval
    same: bool
    known: bool  # the ratio and its interval are numbers
    rounds: int
    unpaired: str  # the ratio of medians, for comparison


def verdict_rows(run: Run) -> list[VerdictRow]:
    rows = []
    for row in run.overhead:
        ratio, meaning = row.ratio, metric(row.metric)
        known = all(finite(x) for x in (ratio.median, ratio.low, ratio.high))
        rows.append(VerdictRow(row.label, run.colour(*row.layer_key), row.setup, row.variant, row.app, row.workload,
                               row.metric, meaning.title,
                               meaning.label, meaning.direction, ratio.median,
                               ratio_text(ratio.median),  # "–" when it is not a number
                               interval_text(ratio.low, ratio.high) if known else "", fmt_interval(ratio, 2),
                               row.state, row.verdict, row.same, known, ratio.n,
                               fmt_interval(row.unpaired, 2) if row.unpaired is not None else MISSING))
    return rows


@dataclass(frozen=True)
class AppRow:
    """A run of several apps: one layer's cost for one app, against that app's own baseline."""

    layer: str
    colour: str
    workload: str
    app: str
    throughput: str  # ratio [interval]
    cpu: str  # ratio [interval]
    base_cpu: str  # µs per request at the baseline
    added_cpu: str  # µs per request the layer adds
    share: str  # of the total CPU per request


def app_rows(run: Run) -> list[AppRow]:
    return [AppRow(row.label, run.colour(row.setup, row.variant), row.workload, entry.app,
                   fmt_interval(entry.throughput, 2), fmt_interval(entry.cpu, 2),
                   figure("cpu_us_per_request", entry.base_cpu_us), figure("cpu_us_per_request", entry.added_cpu_us),
                   f"{entry.layer_share:.0%}" if entry.layer_share is not None else MISSING)
            for row in run.by_app for entry in row.entries]


def _per_workload(pairs: list[tuple[str, float]], unit: str, metric_key: str) -> str:
    return ", ".join(f"{figure(metric_key, value, unit)} ({workload})" for workload, value in pairs)


def role_points(run: Run, cells: list[Cell]) -> list[str]:
    """Per role of a layer: its memory and (a helper's) CPU per request in each workload, and how a
    role the app runs inside splits into the app and the rest."""
    points = []
    for key in dict.fromkeys(role for cell in cells for role in cell.roles):
        role = run.roles.get(key)
        name = role.label if role else key
        memory = [(c.workload, c.roles[key].pss_mb) for c in cells if key in c.roles and finite(c.roles[key].pss_mb)]
        cpu = [(c.workload, c.roles[key].cpu_us_per_request) for c in cells
               if key in c.roles and c.roles[key].cpu_us_per_request is not None]
        cpu = [(workload, value) for workload, value in cpu if value >= MIN_SHOWN_US]
        if memory:
            points.append(f"{name}: memory (PSS) {_per_workload(memory, 'MiB', 'memory_pss_mb')}.")
        if cpu and key != APP.key:  # the app's own CPU is in the tables; helpers are news
            points.append(f"{name}: CPU per request {_per_workload(cpu, 'µs', 'cpu_us_per_request')}.")
        if role and role.contains_app:
            for cell in cells:
                slices = memory_slices(run, cell)
                rest = slices.get(key + REST)
                if rest and APP.key in slices:
                    points.append(f"{cell.workload}: {name} memory (PSS) "
                                  f"{figure('memory_pss_mb', cell.roles[key].pss_mb, 'MiB')}, of which the app itself "
                                  f"(seen from inside its layer) {figure('memory_pss_mb', slices[APP.key].mb, 'MiB')}: "
                                  f"{rest.label} ≈ {figure('memory_pss_mb', rest.mb, 'MiB')}.")
    return points
