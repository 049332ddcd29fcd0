"""The `bench` command: a thin Typer layer that parses, calls the core, and renders.

Every command maps our error types to an exit code (ExitStatus) and one red line; no
traceback reaches a user for a problem they can fix.
"""

from __future__ import annotations

import enum
import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from bench import results as results_store
from bench import scenario as scenarios
from bench import setups
from bench.results import ResultsError
from bench.scenario import ScenarioError
from bench.setups.base import SetupError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="layerbench: what does each virtualization layer cost? The same app runs as a bare "
                       "process, in a container and in a VM under the same load; layerbench measures "
                       "throughput, latency, CPU per request, memory and start-up, and draws the difference.")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

DEFAULT_RESULTS = Path("results")


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1  # a problem the message explains (bad input, missing engine, unreadable results)
    INCOMPLETE = 3  # the run finished but some trials failed
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; results measured so far are kept


def fail(message: str, status: ExitStatus = ExitStatus.ERROR) -> typer.Exit:
    # escape: user text like "[/x]" must not break rich markup; soft_wrap: one line, even when piped
    errors.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(int(status))


def _csv(value: Optional[str]) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


@app.command()
def run(
    scenario: Optional[str] = typer.Argument(None, help="A shipped scenario name (see: bench scenarios) or a "
                                             "YAML file. Without it: every available setup, workloads hello,cpu."),
    setups_flag: Optional[str] = typer.Option(None, "--setups", help="Comma-separated setups, e.g. bare,container."),
    workloads: Optional[str] = typer.Option(None, "--workloads", help="Comma-separated workloads: "
                                            + ",".join(scenarios.BUILTIN_WORKLOADS)),
    duration: Optional[float] = typer.Option(None, "--duration", min=scenarios.MIN_DURATION_S, max=3600,
                                             help="Seconds measured per trial."),
    warmup: Optional[float] = typer.Option(None, "--warmup", min=0, max=600, help="Seconds discarded first."),
    connections: Optional[int] = typer.Option(None, "--connections", min=1, max=1024,
                                              help="Concurrent keep-alive connections."),
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, max=1000, help="Repeats per setup and workload."),
    out: Path = typer.Option(DEFAULT_RESULTS, "--out", help="Folder that receives the run folder."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html at the end."),
    narrate: bool = typer.Option(False, "--narrate", help="Explain each layer as its first trial starts."),
    kernel: Optional[Path] = typer.Option(None, "--kernel", help="Guest kernel (bzImage) for vm setups; default: "
                                          "Debian's cloud kernel, fetched once with apt-get download."),
    accel: Optional[str] = typer.Option(None, "--accel", help="vm accelerator: auto (probe KVM, else TCG), kvm, tcg."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish an interrupted run (id or folder) with "
                                         "its own settings; other flags are ignored."),
) -> None:
    """Run a scenario: every setup under every workload, repeated and interleaved."""
    from bench.runner import RunInterrupted, resume_run, run_scenario
    from bench.render import ProgressView, print_summary
    from bench.summary import summarize

    resume_dir = None
    try:
        if resume is not None:
            resume_dir = results_store.resolve_run(resume, out)
            chosen = scenarios.Scenario.model_validate(results_store.load_run(resume_dir).scenario)
        else:
            for flag, value in (("--setups", setups_flag), ("--workloads", workloads)):
                if value is not None and not _csv(value):  # "--setups ," must not silently mean "all of them"
                    raise fail(f"{flag} names nothing; give a comma-separated list")
            chosen = _chosen_scenario(scenario, _csv(setups_flag), _csv(workloads), duration=duration,
                                      warmup=warmup, connections=connections, repeat=repeat)
            vm_options = {k: v for k, v in (("kernel", str(kernel) if kernel else None), ("accel", accel)) if v}
            if vm_options:
                chosen = scenarios.with_setup_options(chosen, "vm", vm_options)
    except ScenarioError as error:
        for problem in error.problems:
            errors.print(f"[red]error:[/] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(int(ExitStatus.ERROR)) from None
    except (SetupError, ResultsError) as error:
        raise fail(str(error)) from None
    except ValueError as error:  # a stored scenario that no longer validates
        raise fail(f"cannot resume: {error}") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise fail(f"cannot create results folder {out}: {error.strerror or error}") from None
    console.print(f"[bold]{escape(chosen.name)}[/]: {escape(chosen.description)}" if chosen.description
                  else escape(chosen.name))
    _warn_leftovers()
    run_dir = None
    try:
        with ProgressView(console, narrate=narrate) as view:
            def progress(event):
                nonlocal run_dir
                if event.kind == "start":
                    run_dir = Path(event.data["run_dir"])
                view(event)

            if resume_dir is not None:
                run_dir = resume_run(resume_dir, progress)
            else:
                run_dir = run_scenario(chosen, out, progress, command_line=["bench", *sys.argv[1:]])
    except (KeyboardInterrupt, RunInterrupted):
        where = f"; the trials measured so far are in {run_dir}" if run_dir else ""
        raise fail(f"interrupted{where}", ExitStatus.INTERRUPTED) from None
    except (SetupError, ResultsError) as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"cannot write results: {error}") from None
    record = results_store.load_run(run_dir)
    summary = summarize(record)
    print_summary(console, summary)
    if report:
        _write_report(run_dir)
    console.print(f"results: {run_dir}")
    if any(trial.status == "failed" for trial in record.trials):
        raise typer.Exit(int(ExitStatus.INCOMPLETE))


def _warn_leftovers() -> None:
    from bench import leftovers

    found = leftovers.find()
    if found:
        errors.print(f"[yellow]warning:[/] {len(found)} leftover(s) from an earlier run are still running "
                     f"({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}); they skew measurements: "
                     f"bench clean")


def _chosen_scenario(name: str | None, setup_names: list[str] | None, workload_names: list[str] | None, **fields):
    if name is None:
        return scenarios.from_flags(setup_names or setups.names(), workload_names or list(scenarios.DEFAULT_WORKLOADS),
                                    **fields)
    chosen = scenarios.load_scenario(name)
    overrides = dict(fields)
    if setup_names:
        overrides["setups"] = setup_names
    if workload_names:
        overrides["workloads"] = workload_names
    return scenarios.apply_overrides(chosen, **overrides)


def _write_report(run_dir: Path) -> None:
    try:
        from bench.report import write_report
    except ImportError:
        return  # the report module is optional until it lands
    try:
        path = write_report(run_dir)
    except Exception as error:  # a report problem must never hide the measured results
        errors.print(f"[yellow]warning:[/] report not written: {escape(str(error))}")
        return
    console.print(f"report: {path}")


@app.command()
def demo(
    fast: bool = typer.Option(False, "--fast", help="Run the short 'quick' scenario instead of 'classroom'."),
    open_report: bool = typer.Option(False, "--open", help="Open the report in a browser when one exists."),
    out: Path = typer.Option(DEFAULT_RESULTS, "--out", help="Folder that receives the run folder."),
) -> None:
    """The classroom demo: each layer in turn, narrated, ending with the report's path."""
    name = "quick" if fast or "classroom" not in scenarios.shipped() else "classroom"
    console.print("[bold]layerbench demo[/]: the same web app, the same Python, three ways to run it. "
                  "Watch what each layer adds.")
    run(scenario=name, setups_flag=None, workloads=None, duration=None, warmup=None, connections=None, repeat=None,
        out=out, report=True, narrate=True, kernel=None, accel=None, resume=None)
    if open_report:
        import webbrowser

        latest = results_store.resolve_run("latest", out)
        if (latest / "report.html").exists():
            webbrowser.open((latest / "report.html").resolve().as_uri())


@app.command()
def show(
    run_id: str = typer.Argument("latest", help="Run id, run folder, or 'latest'."),
    format: str = typer.Option("table", "--format", help="table or json (a stable contract for other tools)."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """Show a stored run's summary (medians, intervals, overhead ratios)."""
    from bench.render import print_summary
    from bench.summary import summarize

    if format not in ("table", "json"):
        raise fail(f"--format must be table or json, not {format!r}")
    try:
        record = results_store.load_run(results_store.resolve_run(run_id, results_dir))
    except ResultsError as error:
        raise fail(str(error)) from None
    summary = summarize(record)
    if format == "json":
        print(json.dumps(summary, indent=1, default=str))
    else:
        print_summary(console, summary)


@app.command("list")
def list_runs(results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored.")) -> None:
    """List stored runs: date, scenario, setups, status."""
    runs = results_store.list_runs(results_dir)
    if not runs:
        console.print(f"no runs in {results_dir}")
        return
    unreadable = 0
    for run_dir in runs:
        try:
            record = results_store.load_run(run_dir)
        except ResultsError as error:
            console.print(f"{escape(run_dir.name)}  [red]unreadable[/]: {escape(str(error))}")
            unreadable += 1
            continue
        setups_seen = ",".join(dict.fromkeys(t.setup for t in record.trials)) or "-"
        console.print(escape(f"{record.run_id}  {record.created_at[:16]}  {record.scenario.get('name')}  "
                             f"{setups_seen}  {len(record.ok_trials())}/{len(record.trials)} trials  "
                             f"{record.effective_status()}  {_headline(record)}"))
    if unreadable:  # listed anyway, but a script must see that some runs cannot be read
        raise typer.Exit(int(ExitStatus.ERROR))


def _headline(record) -> str:
    """The run's first throughput verdict (or bare's throughput): one figure that says what it found."""
    from bench.summary import summarize

    try:
        summary = summarize(record)
    except Exception:  # a listing must not fail on one odd run
        return ""
    for row in summary["overhead"]:
        if row["metric"] == "throughput_rps":
            return f"{row['setup']} [{row['variant']}] {row['workload']}: {row['verdict'].split(' (')[0]}"
    for row in summary["results"]:
        if row["throughput_rps"]:
            return f"{row['setup']} {row['workload']}: {row['throughput_rps']['median']:,.0f} req/s"
    return ""


@app.command()
def doctor() -> None:
    """Say which setups can run here and, for each missing piece, the command that fixes it."""
    for name in setups.names():
        cls = setups.get(name)
        try:
            reason = cls.check()
        except Exception as error:  # doctor must report, not crash
            reason = f"check failed: {error}"
        mark = "[green]ok[/]  " if reason is None else "[red]no[/]  "
        console.print(f"{mark}{name:10} {cls.layer if reason is None else reason}")
        for line in getattr(cls, "doctor_lines", lambda: [])():
            console.print(f"      {line}", style="dim")
    for tool, fix in (("wrk", "apt-get install wrk"), ("chromium", "apt-get install chromium")):
        found = shutil.which(tool)
        console.print(f"{'[green]ok[/]' if found else '[yellow]--[/]'}  {tool:10} "
                      f"{found or 'optional, not installed: ' + fix}")


@app.command(name="app", context_settings={"allow_extra_args": False})
def run_app(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8080, "--port", min=0,
                                                                                         max=65535)) -> None:
    """Run the benchmarked web app in the foreground (standard library only)."""
    from bench.app.server import main as app_main

    raise typer.Exit(app_main(["--host", host, "--port", str(port)]))


@app.command()
def clean(run_id: Optional[str] = typer.Option(None, "--run", help="Only leftovers of this run id."),
          images: bool = typer.Option(False, "--images", help="Also remove container images built from older "
                                      "inputs (the current one is kept).")) -> None:
    """Remove containers and VMs left behind by a run that was killed."""
    from bench import leftovers

    removed = leftovers.clean(run_id)
    if images:
        from bench.setups.container import prune_images

        removed += prune_images()
    console.print("\n".join(f"removed {item}" for item in removed) or "nothing to clean")


@app.command(name="scenarios")
def list_scenarios() -> None:
    """List the shipped scenarios and the question each one answers."""
    for name, path in scenarios.shipped().items():
        try:
            loaded = scenarios.load_scenario(str(path))
            console.print(f"[bold]{escape(name)}[/]: {escape(loaded.description)}")
        except ScenarioError as error:
            console.print(f"[bold]{escape(name)}[/]: [red]invalid[/]: {escape(error.problems[0])}")


@app.command()
def report(
    run_id: str = typer.Argument("latest", help="Run id, run folder, or 'latest'."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """(Re)draw a stored run's charts and write its self-contained report.html."""
    from bench.report import write_report

    try:
        path = write_report(results_store.resolve_run(run_id, results_dir))
    except ResultsError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"cannot write the report: {error}") from None
    console.print(f"report: {path}")


@app.command()
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more run ids or folders; ratios are to the first."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for compare.html and the chart "
                                       "(default: <results>/compare-<first>-vs-<last>)."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """Compare stored runs cell by cell (ratio to the first run, with intervals); warn when they differ."""
    from bench.compare import comparison_table, compare_runs, write_compare_report

    try:
        run_dirs = [results_store.resolve_run(name, results_dir) for name in runs]
        comparison = compare_runs(run_dirs)
        target = out or results_dir / f"compare-{run_dirs[0].name}-vs-{run_dirs[-1].name}"
        path = write_compare_report(run_dirs, target)
    except ResultsError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"cannot write the comparison: {error}") from None
    console.print(comparison_table(comparison))
    for warning in comparison["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
    console.print(f"page: {path}")


def main() -> None:
    app(prog_name="bench")


if __name__ == "__main__":
    main()
