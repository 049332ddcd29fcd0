"""The terminal's view of a run: rich tables drawn from the model, and the one choke point
through which every piece of text reaches the terminal.

Text from users and from run.json (scenario names, variants, errors, paths) is never read as
rich markup, and control characters in it are shown escaped, so a `[/b]` or an escape sequence
in a file can neither break the output nor reach the terminal.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.model import Run
from bench.outputs import rows
from bench.figures import metric
from bench.vocabulary import LATENCY_LABELS, MISSING, VERDICT_MEANING, VERDICT_STYLE, percent, printable


def safe(text: object, style: str | None = None) -> Text:
    """Any text as a rich Text: never markup, control characters made visible (\\x1b, \\n)."""
    return Text(printable(text), style=style or "")


def _row(table: Table, *cells, style: str | None = None) -> None:
    table.add_row(*(cell if isinstance(cell, Text) else safe(cell) for cell in cells), style=style)


def _table(title: str, columns, text_columns, caption: str | None = None) -> Table:
    """A summary table: text columns left, figures right; title and caption shown as text."""
    table = Table(title=safe(title), title_justify="left", caption=safe(caption) if caption else None)
    for column in columns:
        table.add_column(column, justify="left" if column in text_columns else "right")
    return table


def load_table(run: Run) -> Table | None:
    """Throughput and latency: medians over repeats, throughput with its 95% interval."""
    found = rows.load_rows(run)
    if not found:
        return None
    table = _table("throughput and latency",
                   ("setup", "workload", "n", "req/s [95% CI]", *(f"{name} ms" for name in LATENCY_LABELS.values()),
                    "notes"), text_columns=("setup", "workload", "notes"),
                   caption="medians over repeats (max: the slowest request of any repeat); [low–high] = 95% "
                           "interval (Student's t below 10 repeats, bootstrap from 10)")
    for row in found:
        _row(table, row.label, row.workload, row.repeats, row.throughput, *(row.latency(name) for name in LATENCY_LABELS),
             row.flags, style="yellow" if row.flags else None)
    return table


def startup_table(run: Run) -> Table | None:
    """Cold starts: launch to first HTTP 200 with its interval, and the median of each phase."""
    found = rows.startup_rows(run)
    if not found:
        return None
    table = _table("start-up: launch to first HTTP 200 (medians over cold starts)",
                   ("setup", "n", "seconds [95% CI]", "phases (median s)", "notes"),
                   text_columns=("setup", "phases (median s)", "notes"))
    for row in found:
        _row(table, row.label, row.repeats, row.startup, row.phases, row.flags)
    return table


def cost_table(run: Run) -> Table | None:
    """What each setup costs the host: CPU per request, memory, start-up, by role."""
    table = _table("cost on the host (every process the setup needs)",
                   ("setup", "workload", "CPU µs/req user", "sys", "PSS MiB", "USS MiB", "RSS MiB", "start-up s",
                    "roles (PSS)"), text_columns=("setup", "workload", "roles (PSS)"))
    for row in rows.cost_rows(run):
        _row(table, row.label, row.workload, row.cpu_user, row.cpu_sys, row.pss, row.uss, row.rss, row.startup,
             row.roles)
    return table if table.row_count else None


def density_table(run: Run) -> Table | None:
    """Memory per instance with N copies side by side: USS (one more costs), PSS, RSS, MemAvailable drop."""
    found = rows.density_rows(run)
    if not found:
        return None
    table = _table("density: memory per instance (MiB)",
                   ("setup", "instances", "USS", "PSS", "RSS", "MemAvailable drop", "engine, once (PSS)", "notes"),
                   text_columns=("setup", "notes"),
                   caption="USS = what one more instance costs; PSS = fair share; RSS = upper bound; "
                           "MemAvailable drop = the host's own cross-check")
    for row in found:
        _row(table, row.label, row.instances, row.uss, row.pss, row.rss, row.drop, row.fixed, row.flags)
    return table


def fixed_table(run: Run) -> Table | None:
    """Per layer: what one more instance costs against what having its engine at all costs."""
    found = [row for row in rows.layer_cost_rows(run) if row.has_fixed]
    if not found:
        return None
    table = _table("one more instance vs the engine itself (memory in MiB)",
                   ("setup", "per instance PSS", "USS", "engine PSS", "USS", "engine CPU (cores)", "engine (PSS)"),
                   text_columns=("setup", "engine (PSS)"),
                   caption="per instance: every process the instance needs (its idle footprint when measured); "
                           "engine: its daemons, paid once per host however many instances run")
    for row in found:
        _row(table, row.label, row.pss, row.uss, row.fixed_pss, row.fixed_uss, row.fixed_cpu, row.fixed_role_pss)
    return table


def _ratio_cell(row: rows.VerdictRow) -> Text:
    """`2.15×`, `worse`, `[1.85–2.50]` on three lines: the ratio, its verdict, its 95% interval (three
    short lines keep five metrics within 100 columns, "undecided" included)."""
    if not row.known:
        return safe(MISSING + "\n").append(row.state, style=VERDICT_STYLE[row.state])
    text = Text(f"{row.figure}\n").append(row.state, style=VERDICT_STYLE[row.state])
    return text.append(f"\n{row.interval}", style="dim")


REQUEST_PATH = ("throughput_rps", "latency_p99_ms", "cpu_us_per_request")
MEMORY_AT_REST = "memory_pss_mb"  # at rest where a layer was measured at rest, else under load
AT_REST = (MEMORY_AT_REST, "startup_s")


def _verdict_matrix(title: str, rows: list[tuple[str, str | None, dict]], shown: list[str]) -> Table:
    """Layers (and workloads, where a row has one) by metric: each cell a ratio, its state, its interval."""
    table = Table(title=safe(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))
    table.add_column("setup", no_wrap=True)
    with_workload = any(workload is not None for _, workload, _ in rows)
    if with_workload:
        table.add_column("workload", no_wrap=True)
    cells = [(name, workload, [_ratio_cell(found[key]) if key in found else safe(MISSING) for key in shown])
             for name, workload, found in rows]
    for index, key in enumerate(shown):  # the figures never wrap; a long header does
        widest = max(len(line) for _, _, texts in cells for line in texts[index].plain.splitlines())
        table.add_column(metric(key).label, justify="right", min_width=widest)
    for name, workload, texts in cells:
        _row(table, name, *([workload] if with_workload else []), *texts)
    return table


def overhead_tables(run: Run) -> list[Table]:
    """Every layer against the baseline, in two matrices that fit 80 columns: the request path (each
    load workload: throughput, p99, CPU per request), then memory at rest and start-up (per layer)."""
    verdicts = rows.verdict_rows(run)
    if not verdicts:
        return []
    by_cell: dict[tuple, dict] = {}
    for row in verdicts:
        by_cell.setdefault((row.label, row.workload), {})[row.metric_key] = row
    loads = {cell.workload for cell in run.cells if cell.has_load}
    rounds = max((row.rounds for row in verdicts), default=0)
    tables = []
    request = [(name, workload, found) for (name, workload), found in by_cell.items() if workload in loads]
    if request:
        tables.append(_verdict_matrix(f"verdicts, request path: ratio to {run.baseline} (1.00 = same), its state, "
                                      f"its 95% interval paired over {rounds} rounds", request,
                                      [key for key in REQUEST_PATH if any(key in found for *_, found in request)]))
    rest: dict[str, dict] = {}
    idle = {cell.workload for cell in run.cells if cell.kind == "idle"}
    for (name, workload), found in by_cell.items():  # memory at rest where measured at rest, else under load
        for key in AT_REST:
            at_rest_only = key == MEMORY_AT_REST and key in rest.get(name, {}) and workload not in idle
            if key in found and not at_rest_only:
                rest.setdefault(name, {})[key] = found[key]
    if rest:
        where = "memory at rest" if idle else "memory under load"
        tables.append(_verdict_matrix(f"verdicts, {where} and start-up: ratio to {run.baseline}",
                                      [(name, None, found) for name, found in rest.items()],
                                      [key for key in AT_REST if any(key in found for found in rest.values())]))
    return tables


def by_app_table(run: Run) -> Table | None:
    """A run of several apps: each layer's cost for each app, against that app's own baseline."""
    if not run.by_app:
        return None
    table = _table(f"the same layer, each app (ratio to the same app's {run.baseline}, 95% interval)",
                   ("layer", "workload", "app", "throughput ×", "CPU/req ×", "CPU added µs/req", "share of CPU"),
                   text_columns=("layer", "workload", "app"),
                   caption=f"CPU added = the layer's host CPU per request minus the app's own at {run.baseline} "
                           "(medians); share = added / total")
    for row in rows.app_rows(run):
        _row(table, row.layer, row.workload, row.app, row.throughput, row.cpu, row.added_cpu, row.share)
    return table


def headline(stored: Run) -> str:
    """The run's first throughput verdict (or the baseline's throughput): one figure for a listing."""
    try:
        for row in stored.overhead:
            if row.metric == "throughput_rps":
                return f"{row.label} {row.workload}: {row.verdict.split(' (')[0]}"  # "2.0x slower", "undecided: ..."
        for cell in stored.cells:
            estimate = cell.estimate("throughput_rps")
            if estimate is not None:
                return f"{cell.label} {cell.workload}: {estimate.median:,.0f} req/s"
    except Exception:  # a listing must not fail on one odd run
        return ""
    return ""


def print_run(console: Console, run: Run) -> None:
    """Every table of a run, then its verdicts and the doubts over them (one line per kind, the most
    threatening first: the last lines on screen are the ones a reader acts on)."""
    info = run.info
    console.print(safe(f"run {info.run_id} ({info.scenario_name}, {info.status}, "
                       f"{len(run.cells)} cells)", style="bold"))
    if not run.cells:
        console.print("no trial recorded yet")
    for table in (load_table(run), startup_table(run), cost_table(run), density_table(run), fixed_table(run),
                  by_app_table(run), *overhead_tables(run)):
        if table is not None:
            console.print(table)
    if run.overhead:
        console.print(safe(VERDICT_MEANING.format(effect=percent(run.min_effect)), style="dim"))
    for doubt in run.doubts():
        style = "red" if doubt.kind in ("unreadable", "incomplete", "failed") else \
            "yellow" if doubt.severity == "warning" else "dim"
        console.print(safe(f"{'warning' if doubt.severity == 'warning' else 'note'}: {doubt.text}", style=style))
    if run.sampler_cpu_fraction is not None:
        console.print(safe(f"sampler cost: {run.sampler_cpu_fraction:.2%} of one core (median over trials)",
                           style="dim"))


def comparison_table(comparison) -> Table:
    """A comparison of runs: each cell's median per run and its ratio to the first run."""
    runs = comparison.runs
    caption = "; ".join(f"run {index + 1} = {name}" for index, name in enumerate(comparison.titles))
    table = Table(title=safe("compared runs: median, and ratio to run 1 [95% interval]"), caption=safe(caption),
                  title_justify="left")
    for column in ("setup", "workload", "metric"):
        table.add_column(column)
    for index in range(len(runs)):
        table.add_column(f"run {index + 1}", justify="right")
    for row in rows.compare_rows(comparison):
        cells = [f"{entry.median} ×{entry.ratio}" if entry.ratio else entry.median for entry in row.runs]
        _row(table, row.label, row.workload, row.metric_label, *cells, style="yellow" if row.changed else None)
    return table


__all__ = ["MISSING", "comparison_table", "headline", "print_run", "safe"]
