"""The rows every output shows, built once from the model: a label, the layer's colour, each figure
formatted (its metric's digits and unit), a verdict's state and words, an interval.

The terminal, the report and the markdown export render these rows and format nothing themselves,
so one figure reads the same everywhere. A figure is formatted by its metric in the registry
(bench.figures): throughput and CPU per request without decimals, memory with one, start-up with three.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.figures import interval_text, metric, ratio_text
from bench.model import Cell, Run
from bench.model.memory_cake import REST, memory_slices
from bench.roles import APP
from bench.vocabulary import LATENCY_LABELS, MISSING, finite, fmt, fmt_interval, label, phase_label

MIN_SHOWN_US = 0.5  # a helper's CPU per request below this is noise of the sampler's 10 ms ticks


def figure(metric_key: str, value, unit: str = "") -> str:
    """A value of a registered metric as every table shows it."""
    return fmt(value, metric(metric_key).digits, unit)


def _flags(cell: Cell) -> str:
    return "; ".join(caveat.flag for caveat in cell.caveats() if caveat.flag)


# ---- figures per cell --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadRow:
    """A load cell: throughput with its interval, latency percentiles, the app's own time, spread."""

    label: str
    colour: str
    workload: str
    repeats: int
    failed: int
    throughput: str  # req/s, median [low–high]
    p50: str  # ms, and so on: bench.vocabulary.LATENCY_LABELS
    p90: str
    p99: str
    p999: str
    max: str
    p99_interval: str
    app_ms_p50: str
    spread: str
    noisy: bool
    flags: str  # every caveat's short flag

    def latency(self, name: str) -> str:
        return getattr(self, name)


def load_rows(run: Run) -> list[LoadRow]:
    rows = []
    for cell in run.cells:
        if not (cell.has_load or (cell.failed and cell.kind == "load")):
            continue
        latency = cell.latency_ms
        texts = {name: figure("latency_p50_ms", latency.named(name) if latency else None) for name in LATENCY_LABELS}
        rows.append(LoadRow(cell.label, run.colour(*cell.layer_key), cell.workload, cell.repeats, cell.failed,
                            fmt_interval(cell.estimate("throughput_rps"), metric("throughput_rps").digits), **texts,
                            p99_interval=fmt_interval(cell.estimate("latency_p99_ms")),
                            app_ms_p50=figure("app_time_p50_ms", cell.app_ms_p50) if cell.has_load else MISSING,
                            spread=f"{cell.spread:.0%}", noisy=cell.noisy, flags=_flags(cell)))
    return rows


@dataclass(frozen=True)
class StartupRow:
    """Cold starts of a cell: launch to first HTTP 200 with its interval, and each phase's median."""

    label: str
    colour: str
    repeats: int
    startup: str  # s, median [low–high]
    phases: str
    flags: str


def startup_rows(run: Run) -> list[StartupRow]:
    return [StartupRow(cell.label, run.colour(*cell.layer_key), cell.repeats,
                       fmt_interval(cell.estimate("startup_s"), metric("startup_s").digits),
                       ", ".join(f"{phase_label(name, True)} {value:.3f}" for name, value in cell.startup_phases_s.items()
                                 if value is not None), _flags(cell))
            for cell in run.cells if cell.kind == "startup" and cell.values("startup_s")]


@dataclass(frozen=True)
class CostRow:
    """What a cell costs the host (every process the setup needs), and what the app saw from inside."""

    label: str
    colour: str
    workload: str
    cpu_user: str  # µs per request
    cpu_sys: str
    pss: str  # MiB
    uss: str
    rss: str
    startup: str  # s, median
    roles: str  # each role's PSS
    inside_cpu: str  # µs per request, the app's own count
    inside_rss: str  # MiB
    inside_kernel: str
    accel: str


def cost_rows(run: Run) -> list[CostRow]:
    """Cells under load or at rest; cold starts and density have tables of their own."""
    rows = []
    for cell in run.cells:
        if cell.kind == "startup" or cell.memory_per_instance_mb is not None:
            continue
        cpu, memory, inside = cell.cpu_us_per_request, cell.memory_mb, cell.inside
        roles = ", ".join(f"{role} {fmt(figures.pss_mb, 0)} MiB"
                          for role, figures in cell.roles.items() if figures.pss_mb is not None)
        rows.append(CostRow(
            cell.label, run.colour(*cell.layer_key), cell.workload,
            figure("cpu_us_per_request", cpu.user if cpu else None), figure("cpu_us_per_request", cpu.sys if cpu else None),
            *(figure("memory_pss_mb", getattr(memory, part) if memory else None) for part in ("pss", "uss", "rss")),
            figure("startup_s", cell.median("startup_s")), roles,
            figure("cpu_us_per_request", inside.cpu_us_per_request if inside else None),
            figure("memory_pss_mb", inside.rss_mb if inside else None),
            (inside.kernel if inside else None) or MISSING, cell.accel or MISSING))
    return rows


@dataclass(frozen=True)
class RoleRow:
    """One role of a cell (app, runtime, proxy, hypervisor): its processes, CPU and memory."""

    label: str
    colour: str
    workload: str
    role: str
    processes: str
    cpu_user: str  # µs per request
    cpu_sys: str
    pss: str  # MiB
    uss: str
    rss: str


def role_rows(run: Run) -> list[RoleRow]:
    rows = []
    for cell in run.cells:
        for key, figures in cell.roles.items():
            role = run.roles.get(key)
            rows.append(RoleRow(cell.label, run.colour(*cell.layer_key), cell.workload, role.label if role else key,
                                fmt(figures.processes, 0), figure("cpu_us_per_request", figures.cpu_user_us_per_request),
                                figure("cpu_us_per_request", figures.cpu_sys_us_per_request),
                                figure("memory_pss_mb", figures.pss_mb), figure("memory_pss_mb", figures.uss_mb),
                                figure("memory_pss_mb", figures.rss_mb)))
    return rows


@dataclass(frozen=True)
class DensityRow:
    """N copies side by side: memory per instance by each measure, the host's cross-check, the engine."""

    label: str
    colour: str
    instances: str
    uss: str  # MiB per instance
    pss: str
    rss: str
    drop: str  # the host's MemAvailable drop per instance
    fixed: str  # the engine's daemons, once (PSS)
    mismatch: str  # the cross-check's flag when USS and the drop disagree
    flags: str


def density_rows(run: Run) -> list[DensityRow]:
    rows = []
    for cell in run.cells:
        per_instance = cell.memory_per_instance_mb
        if per_instance is None:
            continue
        memory = [figure("memory_pss_mb", getattr(per_instance, part))
                  for part in ("uss", "pss", "rss", "available_drop")]
        rows.append(DensityRow(cell.label, run.colour(*cell.layer_key), str(cell.instances or MISSING), *memory,
                               figure("memory_pss_mb", cell.fixed.pss_mb if cell.fixed else None),
                               "; ".join(c.flag for c in cell.caveats() if c.kind == "memory_mismatch"), _flags(cell)))
    return rows


@dataclass(frozen=True)
class HeadlineRow:
    """A cell's headline figures (bench.figures.HEADLINE_METRICS), each `median [low–high]` (the median
    alone from one trial), and its verdicts against the baseline's cell of its workload."""

    label: str
    colour: str
    workload: str
    repeats: int
    setup: str
    variant: str
    app: str
    baseline: bool
    figures: tuple[str, ...]  # in the order of `shown`
    flags: str


def headline_figure(cell: Cell, metric_key: str) -> str:
    estimate = cell.estimate(metric_key)
    if estimate is None:
        return MISSING
    digits = metric(metric_key).digits
    return fmt_interval(estimate, digits) if cell.repeats > 1 else fmt(estimate.median, digits)


def headline_rows(run: Run, shown: tuple[str, ...]) -> list[HeadlineRow]:
    return [HeadlineRow(cell.label, run.colour(*cell.layer_key), cell.workload, cell.repeats, cell.setup, cell.variant,
                        cell.app, cell.setup == run.baseline, tuple(headline_figure(cell, key) for key in shown),
                        _flags(cell))
            for cell in run.cells]


# ---- per layer -------------------------------------------------------------------------------


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
                               meaning.label, meaning.direction, ratio_text(ratio.median) if known else MISSING,
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


# ---- words about a layer (the report's layer notes) ---------------------------------------------


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


# ---- a comparison of runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class CompareEntry:
    """One run's figure in a comparison row: its median and, after the first run, its ratio to the first."""

    median: str
    ratio: str  # 1.02 [0.98–1.05]; "" for the first run
    state: str  # worse, better, same, undecided; "" for the first run
    verdict: str


@dataclass(frozen=True)
class CompareRow:
    """One metric of one cell across the compared runs."""

    label: str
    workload: str
    metric_key: str
    metric: str  # the metric's title
    metric_label: str
    changed: bool  # a later run differs measurably from the first
    runs: tuple[CompareEntry, ...]


def compare_rows(comparison) -> list[CompareRow]:
    """The rows of a bench.compare.Comparison, every figure formatted by its metric."""
    rows = []
    for row in comparison.rows:
        meaning = metric(row.metric)
        entries = tuple(CompareEntry(fmt(entry.median, meaning.digits), fmt_interval(entry.ratio, 2) if entry.ratio else "",
                                     entry.state or "", entry.verdict or "") for entry in row.entries)
        rows.append(CompareRow(row.label, row.workload, row.metric, meaning.title, meaning.label, row.changed, entries))
    return rows
