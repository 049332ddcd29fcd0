"""Terminal rendering of summaries and progress (rich). Knows nothing about how runs happen."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.runner import Event


def _num(value, digits: int = 0, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _interval(estimate: dict | None, digits: int = 0) -> str:
    if not estimate:
        return "-"
    return f"{_num(estimate['median'], digits)} [{_num(estimate['low'], digits)}..{_num(estimate['high'], digits)}]"


def _label(row: dict) -> str:
    label = row["setup"] if row["variant"] == "default" else f"{row['setup']} [{row['variant']}]"
    return escape(label)  # "[bridge]" would otherwise be read as rich markup and vanish


def _flags(row: dict) -> str:
    flags = []
    if row["noisy"]:
        flags.append(f"noisy: repeats spread {row['spread']:.0%}")
    if row["failed"]:
        flags.append(f"{row['failed']} failed")
    if row.get("busy_repeats"):
        flags.append(f"busy machine in {row['busy_repeats']} repeat(s): others used up to "
                     f"{row['foreign_cpu_cores']:.2f} cores")
    if row["errors_by_kind"]:
        flags.append("errors " + ", ".join(f"{k}={v}" for k, v in row["errors_by_kind"].items()))
    return "; ".join(flags)


def load_table(summary: dict) -> Table:
    """Throughput and latency: medians over repeats, throughput with its 95% interval."""
    table = Table(title="throughput and latency",
                  caption=f"medians over repeats; \\[low..high] = {summary['confidence']:.0%} interval "
                          f"(Student's t below 10 repeats, bootstrap from 10)",
                  title_justify="left")
    for column in ("setup", "workload", "n", "req/s [95% CI]", "p50 ms", "p90", "p99", "p99.9", "notes"):
        table.add_column(column, justify="left" if column in ("setup", "workload", "notes") else "right")
    for row in summary["results"]:
        if not row["throughput_rps"] and not row["failed"]:
            continue  # start-up and footprint cells have their own tables
        latency = row["latency_ms"] or {}
        table.add_row(_label(row), row["workload"], str(row["repeats"]), _interval(row["throughput_rps"]),
                      _num(latency.get("p50"), 2), _num(latency.get("p90"), 2), _num(latency.get("p99"), 2),
                      _num(latency.get("p999"), 2), _flags(row), style="yellow" if _flags(row) else None)
    return table


def startup_table(summary: dict) -> Table | None:
    """Cold starts: launch to first HTTP 200 with its interval, and the median of each phase."""
    rows = [row for row in summary["results"] if row["workload"] == "startup" and row["startup_s_ci"]]
    if not rows:
        return None
    table = Table(title="start-up: launch to first HTTP 200 (medians over cold starts)", title_justify="left")
    for column in ("setup", "n", "seconds [95% CI]", "phases (median s)", "notes"):
        table.add_column(column, justify="right" if column in ("n", "seconds [95% CI]") else "left")
    for row in rows:
        phases = ", ".join(f"{name.removesuffix('_s')} {value:.3f}" for name, value in row["startup_phases_s"].items()
                           if value is not None)
        table.add_row(_label(row), str(row["repeats"]), _interval(row["startup_s_ci"], 3), phases, _flags(row))
    return table


def cost_table(summary: dict) -> Table | None:
    """What each setup costs the host: CPU per request, memory, start-up."""
    table = Table(title="cost on the host (every process the setup needs)", title_justify="left")
    for column in ("setup", "workload", "CPU us/req user", "sys", "RSS MB", "USS MB", "start-up s", "roles"):
        table.add_column(column, justify="left" if column in ("setup", "workload", "roles") else "right")
    for row in summary["results"]:
        if row["workload"] == "startup":
            continue  # shown in the start-up table
        cpu = row["cpu_us_per_request"] or {}
        memory = row["memory_mb"] or {}
        roles = ", ".join(f"{role} {figures['rss_mb']:.0f} MB" for role, figures in row["roles"].items()
                          if figures.get("rss_mb") is not None)
        table.add_row(_label(row), row["workload"], _num(cpu.get("user")), _num(cpu.get("sys")),
                      _num(memory.get("rss"), 1), _num(memory.get("uss"), 1), _num(row["startup_s"], 3), roles)
    return table if table.row_count else None


def overhead_table(summary: dict) -> Table | None:
    """Every setup against bare, per workload and metric, in words."""
    if not summary["overhead"]:
        return None
    table = Table(title="overhead relative to bare (ratio, 95% interval)", title_justify="left")
    for column in ("setup", "workload", "metric", "ratio", "verdict"):
        table.add_column(column, justify="right" if column == "ratio" else "left")
    for row in summary["overhead"]:
        table.add_row(_label(row), row["workload"], row["metric"], _interval(row["ratio"], 2),
                      row["verdict"])
    return table


def print_summary(console: Console, summary: dict) -> None:
    console.print(escape(f"run {summary['run_id']} ({summary['scenario']}, {summary['status']}, "
                         f"{len(summary['results'])} cells)"), style="bold")
    if not summary["results"]:
        console.print("no trial recorded yet")
    if any(row["throughput_rps"] or row["failed"] for row in summary["results"]):
        console.print(load_table(summary))
    for table in (startup_table(summary), cost_table(summary)):
        if table is not None:
            console.print(table)
    overhead = overhead_table(summary)
    if overhead is not None:
        console.print(overhead)
    for skipped in summary["skipped"]:
        console.print(f"[yellow]skipped {skipped['variant']}: {skipped['reason']}[/]")
    if summary.get("sampler_cpu_fraction") is not None:
        console.print(f"sampler cost: {summary['sampler_cpu_fraction']:.2%} of one core (median over trials)",
                      style="dim")


def narration(setup_name: str) -> str:
    """One or two sentences a class hears when a setup's first trial starts (from the setup itself)."""
    from bench import setups

    try:
        cls = setups.get(setup_name)
    except setups.SetupError:
        return ""
    return getattr(cls, "narration", None) or cls.layer


class ProgressView:
    """Renders runner events: a bar for the trials, a line per finished trial."""

    def __init__(self, console: Console, narrate: bool = False):
        self.console = console
        self.narrate = narrate
        self.narrated: set[str] = set()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self) -> "ProgressView":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.__exit__(*exc_info)

    def __call__(self, event: Event) -> None:
        # Messages carry user text (scenario names, error reasons): never read them as markup.
        message = escape(event.message)
        if event.kind == "trial":
            setup = event.data.get("setup")
            if self.narrate and setup not in self.narrated:
                self.narrated.add(setup)
                self.console.print(f"\n[bold cyan]now, {escape(str(setup))}[/]: {escape(narration(setup))}")
            if self.task is None:
                self.task = self.progress.add_task("trials", total=event.total)
            self.progress.update(self.task, description=message, completed=event.done - 1)
        elif event.kind in ("trial_done", "trial_failed"):
            style = "red" if event.kind == "trial_failed" else None
            self.console.print(f"  {message}", style=style, highlight=False)
            if self.task is not None:
                self.progress.advance(self.task)
        elif event.kind in ("skip", "repeat"):
            self.console.print(message, style="yellow", highlight=False)
        elif event.kind in ("start", "prepare"):
            self.console.print(message, style="dim", highlight=False)
