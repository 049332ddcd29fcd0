"""Rows per cell: load, start-up, cost on the host, roles, density, and a cell's headline figures."""

from __future__ import annotations

from dataclasses import dataclass

from bench.figures import metric
from bench.model import Cell, Run
from bench.vocabulary import LATENCY_LABELS, MISSING, fmt, fmt_interval, phase_label


def figure(metric_key: str, value, unit: str = "") -> str:
    """A value of a registered metric as every table shows it."""
    return fmt(value, metric(metric_key).digits, unit)


def _flags(caveats, leave_out: tuple[str, ...] = ()) -> str:
    """The short flags of a cell's caveats (Cell.caveats(), computed once per row)."""
    return "; ".join(caveat.flag for caveat in caveats if caveat.flag and caveat.kind not in leave_out)


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
    flags_beside_spread: str  # the same but "noisy", for a table that shows the spread and shades noisy rows

    def latency(self, name: str) -> str:
        return getattr(self, name)


def load_rows(run: Run) -> list[LoadRow]:
    rows = []
    for cell in run.cells:
        if not (cell.has_load or (cell.failed and cell.kind == "load")):
            continue
        latency, caveats = cell.latency_ms, cell.caveats()
        texts = {name: figure("latency_p50_ms", latency.named(name) if latency else None) for name in LATENCY_LABELS}
        rows.append(LoadRow(cell.label, run.colour(*cell.layer_key), cell.workload, cell.repeats, cell.failed,
                            fmt_interval(cell.estimate("throughput_rps"), metric("throughput_rps").digits), **texts,
                            p99_interval=fmt_interval(cell.estimate("latency_p99_ms")),
                            app_ms_p50=figure("app_time_p50_ms", cell.app_ms_p50) if cell.has_load else MISSING,
                            spread=f"{cell.spread:.0%}", noisy=cell.noisy, flags=_flags(caveats),
                            flags_beside_spread=_flags(caveats, leave_out=("noisy",))))
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
                                 if value is not None), _flags(cell.caveats()))
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
        caveats = cell.caveats()
        memory = [figure("memory_pss_mb", getattr(per_instance, part))
                  for part in ("uss", "pss", "rss", "available_drop")]
        rows.append(DensityRow(cell.label, run.colour(*cell.layer_key), str(cell.instances or MISSING), *memory,
                               figure("memory_pss_mb", cell.fixed.pss_mb if cell.fixed else None),
                               "; ".join(c.flag for c in caveats if c.kind == "memory_mismatch"), _flags(caveats)))
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
                        _flags(cell.caveats()))
            for cell in run.cells]
