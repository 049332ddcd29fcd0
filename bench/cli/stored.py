"""Commands that read stored runs: show, list, report, compare (and its gate)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from bench import results as results_store
from bench.cli.common import DEFAULT_RESULTS, app, console, errors, exit_if_unreadable, guarded, open_in_browser
from bench.errors import ExitStatus, Regression, ResultsError
from bench.outputs.terminal import safe


@app.command()
@guarded
def show(
    run_id: str = typer.Argument("latest", help="Run id, run folder, or 'latest'."),
    format: str = typer.Option("table", "--format", help="table, markdown (for a README or PR), csv or json."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """Show a stored run's summary (medians, intervals, overhead ratios)."""
    from bench.outputs.export import check_format, export_run
    from bench.model import Run
    from bench.outputs.terminal import print_run

    check_format(format)
    from bench.cli import fleet as fleets

    fleet_dir = fleets.fleet_folder(run_id, results_dir)
    if fleet_dir is not None:
        return fleets.show_fleet(fleet_dir, format)
    stored = Run.load(results_store.resolve_run(run_id, results_dir))
    if format == "table":
        print_run(console, stored)  # it lists unreadable files with the other warnings
    else:
        sys.stdout.write(export_run(stored, format))
    exit_if_unreadable([stored], say=format != "table")


@app.command("list")
@guarded
def list_runs(results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored.")) -> None:
    """List stored runs: date, scenario, setups, status, and one figure that says what each found."""
    from bench.model import Run
    from bench.outputs.terminal import headline

    from bench.cli.fleet import fleet_lines as listed_fleets

    runs, fleet_lines = results_store.list_runs(results_dir), listed_fleets(results_dir)
    for line in fleet_lines:
        console.print(safe(line))
    if not runs and not fleet_lines:
        console.print(safe(f"no runs in {results_dir}"))
        return
    unreadable = 0
    for run_dir in runs:
        try:
            stored = Run.load(run_dir)
        except ResultsError as error:
            console.print(safe(run_dir.name).append("  ").append(safe("unreadable", "red")).append(safe(f": {error}")))
            unreadable += 1
            continue
        info = stored.info
        console.print(safe(f"{info.run_id}  {info.created_at[:16]}  {info.scenario_name}  "
                           f"{','.join(info.setups_ran) or '-'}  {info.trials_ok}/{info.trials_recorded} trials  "
                           f"{info.status}  {headline(stored)}"))
    if unreadable:  # listed anyway, but a script must see that some runs cannot be read
        raise typer.Exit(int(ExitStatus.ERROR))


@app.command()
@guarded
def report(
    run_id: str = typer.Argument("latest", help="Run id, run folder, or 'latest'."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
    open_report: bool = typer.Option(False, "--open", help="Open it in the browser when there is a display."),
) -> None:
    """(Re)draw a stored run's charts and write its self-contained report.html."""
    from bench.cli import fleet as fleets
    from bench.model import Run
    from bench.outputs.report import write_run_report

    fleet_dir = fleets.fleet_folder(run_id, results_dir)
    stored = None if fleet_dir else Run.load(results_store.resolve_run(run_id, results_dir))
    try:
        path = fleets.report_fleet(fleet_dir) if fleet_dir else write_run_report(stored)
    except OSError as error:
        raise ResultsError(f"cannot write the report: {error}") from None
    console.print(safe(f"report: {path}"), soft_wrap=True)  # a path stays one line, to copy
    if open_report:
        open_in_browser(path)
    if stored is not None:
        exit_if_unreadable([stored], say=True)


@app.command()
@guarded
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more run ids or folders, or a fleet (its hosts' runs); "
                                     "ratios are to the first."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for compare.html and the chart "
                                       "(default: <results>/compare-<first>-vs-<last>)."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
    format: str = typer.Option("table", "--format", help="table (and the page), markdown, csv or json (printed)."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", help="Gate: 'throughput_rps:-5%,latency_p99_ms:+20%' "
                                          "exits 5 on a significant change beyond a threshold; overhead.<metric> "
                                          "gates a layer's ratio to the baseline (default: the scenario's gate)."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Let the gate pass when it could check nothing "
                                     "(default: exit 5: a baseline without the figure proves nothing)."),
    fail_on_undecided: bool = typer.Option(False, "--fail-on-undecided", help="Fail the gate on a cell it cannot "
                                           "decide (too few rounds, too noisy), not only on a regression."),
) -> None:
    """Compare stored runs cell by cell (ratio to the first run, with intervals); warn when they differ."""
    from bench import gate
    from bench.compare import compare_runs
    from bench.outputs.export import check_format, export_comparison

    check_format(format)
    if fail_on is not None:  # a malformed --fail-on is an error before any run is read or printed
        gate.thresholds_for(None, fail_on)
    from bench.cli.fleet import expand_runs

    run_dirs, names = expand_runs(runs, results_dir)
    comparison = compare_runs(run_dirs, names)
    thresholds = gate.thresholds_for(comparison, fail_on)  # the scenario's gate is checked before printing too
    if format == "table":
        _compare_page(comparison, out or results_dir / f"compare-{run_dirs[0].name}-vs-{run_dirs[-1].name}")
    else:
        sys.stdout.write(export_comparison(comparison, format))
    exit_if_unreadable(comparison.runs, say=True)
    _gate(comparison, thresholds, allow_empty, fail_on_undecided, console if format == "table" else errors)


def _compare_page(comparison, target: Path) -> None:
    from bench.outputs.compare_page import write_compare_report
    from bench.outputs.terminal import comparison_table

    try:
        path = write_compare_report(comparison, target)
    except OSError as error:
        raise ResultsError(f"cannot write the comparison: {error}") from None
    console.print(comparison_table(comparison))
    for caveat in comparison.caveats:
        console.print(Text("warning: ", style="yellow").append(safe(caveat.text)))
    console.print(safe(f"page: {path}"), soft_wrap=True)  # a path stays one line, to copy


def _gate(comparison, thresholds: tuple, allow_empty: bool, fail_on_undecided: bool, out: Console) -> None:
    """Apply the gate's thresholds (bench.gate.Threshold); Regression when it fails or checked nothing."""
    from bench import gate

    if not thresholds:
        return
    result = gate.check(comparison, thresholds, allow_empty, fail_on_undecided)
    for finding in result.findings:  # soft_wrap: one line each, for a CI log
        out.print(safe("FAIL " if finding.fails else "note ", "red" if finding.fails else "yellow")
                  .append(safe(finding.text)), soft_wrap=True)
    if not result.passed:
        raise Regression(result.summary())
    out.print(safe(result.summary(), "green"), soft_wrap=True)


