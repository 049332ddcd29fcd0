"""The terminal's view of a run: rich tables drawn from the model, and the one choke point
through which every piece of text reaches the terminal.

Text from users and from run.json (scenario names, variants, errors, paths) is never read as
rich markup, and control characters in it are shown escaped, so a `[/b]` or an escape sequence
in a file can neither break the output nor reach the terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.model import Run
from bench.vocabulary import LATENCY_LABELS, MISSING, fmt, fmt_interval, metric, phase_label, printable


def safe(text: object, style: str | None = None) -> Text:
    """Any text as a rich Text: never markup, control characters made visible (\\x1b, \\n)."""
    return Text(printable(text), style=style or "")


def _row(table: Table, *cells, style: str | None = None) -> None:
    table.add_row(*(cell if isinstance(cell, Text) else safe(cell) for cell in cells), style=style)


def _flags(cell) -> str:
    return "; ".join(caveat.flag for caveat in cell.caveats() if caveat.flag)


def load_table(run: Run) -> Table | None:
    """Throughput and latency: medians over repeats, throughput with its 95% interval."""
    cells = [cell for cell in run.cells if cell.has_load or (cell.failed and cell.kind == "load")]
    if not cells:
        return None
    table = Table(title="throughput and latency", title_justify="left",
                  caption=safe("medians over repeats (max: the slowest request of any repeat); [low–high] = 95% "
                               "interval (Student's t below 10 repeats, bootstrap from 10)"))
    columns = ("setup", "workload", "n", "req/s [95% CI]", *(f"{name} ms" for name in LATENCY_LABELS.values()),
               "notes")
    for column in columns:
        table.add_column(column, justify="left" if column in ("setup", "workload", "notes") else "right")
    for cell in cells:
        latency = cell.latency_ms or {}
        flags = _flags(cell)
        _row(table, cell.label, cell.workload, cell.repeats, fmt_interval(cell.estimate("throughput_rps"), 0),
             *(fmt(latency.get(name), 2) for name in LATENCY_LABELS), flags, style="yellow" if flags else None)
    return table


def startup_table(run: Run) -> Table | None:
    """Cold starts: launch to first HTTP 200 with its interval, and the median of each phase."""
    cells = [cell for cell in run.cells if cell.kind == "startup" and cell.values("startup_s")]
    if not cells:
        return None
    table = Table(title="start-up: launch to first HTTP 200 (medians over cold starts)", title_justify="left")
    for column in ("setup", "n", "seconds [95% CI]", "phases (median s)", "notes"):
        table.add_column(column, justify="right" if column in ("n", "seconds [95% CI]") else "left")
    for cell in cells:
        phases = ", ".join(f"{phase_label(name, True)} {value:.3f}" for name, value in cell.startup_phases_s.items()
                           if value is not None)
        _row(table, cell.label, cell.repeats, fmt_interval(cell.estimate("startup_s"), 3), phases, _flags(cell))
    return table


def cost_table(run: Run) -> Table | None:
    """What each setup costs the host: CPU per request, memory, start-up, by role."""
    table = Table(title="cost on the host (every process the setup needs)", title_justify="left")
    for column in ("setup", "workload", "CPU µs/req user", "sys", "RSS MB", "USS MB", "start-up s", "roles"):
        table.add_column(column, justify="left" if column in ("setup", "workload", "roles") else "right")
    for cell in run.cells:
        if cell.kind == "startup":
            continue  # shown in the start-up table
        cpu = cell.cpu_us_per_request or {}
        memory = cell.memory_mb or {}
        roles = ", ".join(f"{role} {fmt(figures['rss_mb'], 0)} MB"
                          for role, figures in cell.roles.items() if figures.get("rss_mb") is not None)
        _row(table, cell.label, cell.workload, fmt(cpu.get("user"), 0), fmt(cpu.get("sys"), 0),
             fmt(memory.get("rss"), 1), fmt(memory.get("uss"), 1), fmt(cell.median("startup_s"), 3), roles)
    return table if table.row_count else None


def overhead_table(run: Run) -> Table | None:
    """Every setup against the baseline, per workload and metric, in words."""
    if not run.overhead:
        return None
    table = Table(title=safe(f"overhead relative to {run.baseline} (ratio, 95% interval)"), title_justify="left")
    for column in ("setup", "workload", "metric", "ratio", "verdict"):
        table.add_column(column, justify="right" if column == "ratio" else "left")
    for row in run.overhead:
        _row(table, row.label, row.workload, metric(row.metric).label, fmt_interval(row.ratio, 2), row.verdict)
    return table


def print_run(console: Console, run: Run) -> None:
    """Every table of a run, then what was skipped and the sampler's own cost."""
    record = run.record
    console.print(safe(f"run {record.run_id} ({record.scenario.get('name')}, {record.effective_status()}, "
                       f"{len(run.cells)} cells)", style="bold"))
    if not run.cells:
        console.print("no trial recorded yet")
    for table in (load_table(run), startup_table(run), cost_table(run), overhead_table(run)):
        if table is not None:
            console.print(table)
    for caveat in run.caveats():
        if caveat.kind in ("skipped", "layer", "incomplete", "no_baseline", "unreadable"):
            console.print(safe(caveat.text, style="red" if caveat.kind == "unreadable" else "yellow"))
    if run.sampler_cpu_fraction is not None:
        console.print(safe(f"sampler cost: {run.sampler_cpu_fraction:.2%} of one core (median over trials)",
                           style="dim"))


def comparison_table(comparison) -> Table:
    """A comparison of runs: each cell's median per run and its ratio to the first run."""
    runs = comparison.runs
    caption = "; ".join(f"run {index + 1} = {run.run_id}" for index, run in enumerate(runs))
    table = Table(title=safe("compared runs: median, and ratio to run 1 [95% interval]"), caption=safe(caption),
                  title_justify="left")
    for column in ("setup", "workload", "metric"):
        table.add_column(column)
    for index in range(len(runs)):
        table.add_column(f"run {index + 1}", justify="right")
    for row in comparison.rows:
        cells = [fmt(row.entries[0].median)]
        for entry in row.entries[1:]:
            cells.append(f"{fmt(entry.median)} ×{fmt_interval(entry.ratio, 2)}" if entry.ratio else fmt(entry.median))
        _row(table, row.label, row.workload, metric(row.metric).label, *cells, style="yellow" if row.changed else None)
    return table


def headline(run: Run) -> str:
    """The run's first throughput verdict (or a cell's throughput): one figure for a listing."""
    try:
        for row in run.overhead:
            if row.metric == "throughput_rps":
                return f"{row.label} {row.workload}: {row.verdict.split(' (')[0]}"
        for cell in run.cells:
            estimate = cell.estimate("throughput_rps")
            if estimate is not None:
                return f"{cell.label} {cell.workload}: {estimate.median:,.0f} req/s"
    except Exception:  # a listing must not fail on one odd run
        return ""
    return ""


__all__ = ["MISSING", "comparison_table", "headline", "print_run", "safe"]
