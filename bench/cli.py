"""The `bench` command: a thin Typer layer that parses, calls the core, and renders.

Errors become exit codes in one place (`guarded`): every LayerbenchError prints its lines in red
and exits with its status; no traceback reaches a user for a problem they can fix.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from bench import results as results_store
from bench import scenario as scenarios
from bench.errors import ExitStatus, Interrupted, LayerbenchError, ResultsError
from bench.terminal import safe

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="layerbench: what does each virtualization layer cost? The same app runs as a bare "
                       "process, in a container and in a VM under the same load; layerbench measures "
                       "throughput, latency, CPU per request, memory and start-up, and draws the difference.")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

DEFAULT_RESULTS = Path("results")


def _print_error(line: str) -> None:
    # soft_wrap: one line, even when piped; safe(): user text is never markup
    errors.print(Text("error: ", style="red").append(safe(line)), soft_wrap=True)


def guarded(command):
    """Map errors to exit codes for one command: the one place that decides how `bench` exits."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LayerbenchError as error:
            for line in error.lines:
                _print_error(line)
            raise typer.Exit(int(error.exit_status)) from None
        except KeyboardInterrupt:
            _print_error("interrupted")
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        except OSError as error:  # the disk or the permissions: name the file, no traceback
            where = f" ({error.filename})" if error.filename else ""
            _print_error(f"{error.strerror or error}{where}")
            raise typer.Exit(int(ExitStatus.ERROR)) from None
    return wrapper


def _csv(flag: str, value: Optional[str]) -> list[str] | None:
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:  # "--setups ," must not silently mean "all of them"
        raise LayerbenchError(f"{flag} names nothing; give a comma-separated list")
    return parts


def _chosen_scenario(name: str | None, setup_names: list[str] | None, workload_names: list[str] | None,
                     vm_options: dict, **fields) -> scenarios.Scenario:
    if name is None:
        from bench.setups import registry

        chosen = scenarios.from_flags(setup_names or registry.names(),
                                      workload_names or list(scenarios.DEFAULT_WORKLOADS), **fields)
    else:
        overrides = dict(fields)
        if setup_names:
            overrides["setups"] = setup_names
        if workload_names:
            overrides["workloads"] = workload_names
        chosen = scenarios.apply_overrides(scenarios.load_scenario(name), **overrides)
    return scenarios.with_option_everywhere(chosen, vm_options) if vm_options else chosen


@app.command()
@guarded
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
    kernel: Optional[Path] = typer.Option(None, "--kernel", help="Guest kernel (bzImage) for every setup that "
                                          "boots one (vm); default: Debian's cloud kernel, fetched once."),
    accel: Optional[str] = typer.Option(None, "--accel", help="Accelerator for every setup that boots a kernel: "
                                        "auto (probe KVM, else TCG), kvm, tcg."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish an interrupted run (id or folder) with "
                                         "its own settings; other flags are ignored."),
) -> None:
    """Run a scenario: every setup under every workload, repeated and interleaved.

    Exit status: 0 all measured; 1 an error (the report could not be written, bad input, ...);
    3 some trials failed; 4 a setup named with --setups could not run here and was skipped;
    130 interrupted (the trials measured so far are kept).
    """
    if resume is not None:
        from bench.runlock import refuse_if_live

        resume_dir = results_store.resolve_run(resume, out)
        record = results_store.load_run(resume_dir)
        refuse_if_live(resume_dir, record.runner_pid)  # one writer per run (the runner's lock enforces it)
        chosen = scenarios.Scenario.model_validate(record.scenario)
    else:
        resume_dir = None
        vm_options = {k: v for k, v in (("kernel", str(kernel) if kernel else None), ("accel", accel)) if v}
        chosen = _chosen_scenario(scenario, _csv("--setups", setups_flag), _csv("--workloads", workloads),
                                  vm_options, duration=duration, warmup=warmup, connections=connections,
                                  repeat=repeat)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ResultsError(f"cannot create results folder {out}: {error.strerror or error}") from None
    console.print(safe(chosen.name, "bold").append(safe(f": {chosen.description}" if chosen.description else "")))
    _warn_leftovers()
    run_dir = _execute(chosen, out, resume_dir, narrate)
    _finish(run_dir, report, _csv("--setups", setups_flag) if resume is None else None)


def _execute(chosen: scenarios.Scenario, out: Path, resume_dir: Path | None, narrate: bool) -> Path:
    """Run (or resume) with a progress view; Interrupted naming where the measured trials are."""
    from bench.progress import ProgressView
    from bench.runner import resume_run, run_scenario

    run_dir = None
    try:
        with ProgressView(console, narrate=narrate) as view:
            def progress(event):
                nonlocal run_dir
                if event.kind == "start":
                    run_dir = Path(event.data["run_dir"])
                view(event)

            if resume_dir is not None:
                return resume_run(resume_dir, progress)
            return run_scenario(chosen, out, progress, command_line=["bench", *sys.argv[1:]])
    except KeyboardInterrupt:  # RunInterrupted (SIGTERM) is one too
        where = f"; the trials measured so far are in {run_dir}" if run_dir else ""
        raise Interrupted(f"interrupted{where}") from None
    except OSError as error:
        raise ResultsError(f"cannot write results: {error}") from None


def _finish(run_dir: Path, report: bool, named: list[str] | None) -> None:
    """Print the run, write its report, and exit with the status the run earned (see `run --help`)."""
    from bench.model import Run
    from bench.terminal import print_run

    measured = Run.load(run_dir)
    print_run(console, measured)
    written = _write_report(run_dir) if report else True
    console.print(safe(f"results: {run_dir}"))
    skipped = [entry.get("setup") for entry in measured.record.skipped if entry.get("setup") in (named or [])]
    if not written:
        raise typer.Exit(int(ExitStatus.ERROR))
    if any(trial.status == "failed" for trial in measured.record.trials):
        raise typer.Exit(int(ExitStatus.INCOMPLETE))
    if skipped:  # asked for by name and not measured: a script must not take the run for complete
        raise typer.Exit(int(ExitStatus.SKIPPED))


def _warn_leftovers() -> None:
    from bench import leftovers

    found = leftovers.find()
    if found:
        errors.print(Text("warning: ", style="yellow").append(safe(
            f"{len(found)} leftover(s) from an earlier run are still running ({', '.join(found[:3])}"
            f"{', ...' if len(found) > 3 else ''}); they skew measurements: bench clean")))


def _write_report(run_dir: Path) -> bool:
    from bench.report import write_report

    try:
        path = write_report(run_dir)
    except Exception as error:  # a report problem must never hide the measured results: they are printed
        _print_error(f"report not written: {error}")
        return False
    console.print(safe(f"report: {path}"))
    return True


@app.command()
@guarded
def demo(
    fast: bool = typer.Option(False, "--fast", help="Run the short 'quick' scenario instead of 'classroom'."),
    open_report: bool = typer.Option(False, "--open", help="Open the report in a browser when one exists."),
    out: Path = typer.Option(DEFAULT_RESULTS, "--out", help="Folder that receives the run folder."),
) -> None:
    """The classroom demo: each layer in turn, narrated, ending with the report's path."""
    name = "quick" if fast or "classroom" not in scenarios.shipped() else "classroom"
    console.print(Text("layerbench demo", style="bold").append(": the same web app, the same Python, three ways "
                                                               "to run it. Watch what each layer adds."))
    run.__wrapped__(scenario=name, setups_flag=None, workloads=None, duration=None, warmup=None, connections=None,
                    repeat=None, out=out, report=True, narrate=True, kernel=None, accel=None, resume=None)
    if open_report:
        import webbrowser

        latest = results_store.resolve_run("latest", out)
        if (latest / "report.html").exists():
            webbrowser.open((latest / "report.html").resolve().as_uri())


@app.command()
@guarded
def show(
    run_id: str = typer.Argument("latest", help="Run id, run folder, or 'latest'."),
    format: str = typer.Option("table", "--format", help="table or json (a stable contract for other tools)."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """Show a stored run's summary (medians, intervals, overhead ratios)."""
    from bench.model import Run
    from bench.summary import summarize
    from bench.terminal import print_run

    if format not in ("table", "json"):
        raise LayerbenchError(f"--format must be table or json, not {format!r}")
    stored = Run.load(results_store.resolve_run(run_id, results_dir))
    if format == "json":
        print(json.dumps(summarize(stored), indent=1, default=str, allow_nan=False))
        _exit_if_unreadable([stored], say=True)
    else:
        print_run(console, stored)  # it lists unreadable files with the other warnings
        _exit_if_unreadable([stored], say=False)


def _exit_if_unreadable(runs: list, say: bool) -> None:
    """Exit 1 when a raw trial file of these runs could not be used; `say`: one line per file on stderr."""
    unreadable = [caveat for run in runs for caveat in run.caveats() if caveat.kind == "unreadable"]
    if not unreadable:
        return
    for caveat in unreadable if say else []:
        _print_error(caveat.text)
    raise typer.Exit(int(ExitStatus.ERROR))


@app.command("list")
@guarded
def list_runs(results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored.")) -> None:
    """List stored runs: date, scenario, setups, status, and one figure that says what each found."""
    from bench.model import Run
    from bench.terminal import headline

    runs = results_store.list_runs(results_dir)
    if not runs:
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
        record = stored.record
        setups_seen = ",".join(dict.fromkeys(t.setup for t in record.trials)) or "-"
        console.print(safe(f"{record.run_id}  {record.created_at[:16]}  {record.scenario.get('name')}  "
                           f"{setups_seen}  {len(record.ok_trials())}/{len(record.trials)} trials  "
                           f"{record.effective_status()}  {headline(stored)}"))
    if unreadable:  # listed anyway, but a script must see that some runs cannot be read
        raise typer.Exit(int(ExitStatus.ERROR))


@app.command()
@guarded
def doctor() -> None:
    """Say which setups can run here and, for each missing piece, the command that fixes it."""
    from bench.setups import registry

    for cls in registry.classes():
        try:
            reason = cls.check()
        except Exception as error:  # doctor must report, not crash
            reason = f"check failed: {error}"
        mark = Text("ok  ", style="green") if reason is None else Text("no  ", style="red")
        console.print(mark.append(safe(f"{cls.name:10} {cls.stack if reason is None else reason}")))
        for line in cls.doctor_lines():
            console.print(safe(f"      {line}", "dim"))
    for module, problem in registry.broken().items():
        console.print(Text("no  ", style="red").append(safe(f"{module:10} setup module failed to load: {problem}")))
    for tool, fix in (("wrk", "apt-get install wrk"), ("chromium", "apt-get install chromium")):
        found = shutil.which(tool)
        mark = Text("ok  ", style="green") if found else Text("--  ", style="yellow")
        console.print(mark.append(safe(f"{tool:10} {found or 'optional, not installed: ' + fix}")))


@app.command(name="app", context_settings={"allow_extra_args": False})
def run_app(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8080, "--port", min=0,
                                                                                         max=65535)) -> None:
    """Run the benchmarked web app in the foreground (standard library only)."""
    from bench.app.server import main as app_main

    raise typer.Exit(app_main(["--host", host, "--port", str(port)]))


@app.command()
@guarded
def clean(run_id: Optional[str] = typer.Option(None, "--run", help="Only leftovers of this run id (refused "
                                              "while that run is still going)."),
          images: bool = typer.Option(False, "--images", help="Also remove container images built from older "
                                      "inputs (the current one is kept)."),
          results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored.")) -> None:
    """Remove containers and VMs left behind by a run that was killed; runs still going are spared."""
    from bench import leftovers

    if run_id is not None:
        leftovers.refuse_live_run(run_id, results_dir)
    removed = leftovers.clean(run_id, caches=images)
    console.print(safe("\n".join(f"removed {item}" for item in removed) or "nothing to clean"))


@app.command(name="scenarios")
@guarded
def list_scenarios() -> None:
    """List the shipped scenarios and the question each one answers."""
    for name, path in scenarios.shipped().items():
        try:
            loaded = scenarios.load_scenario(str(path))
            console.print(safe(name, "bold").append(safe(f": {loaded.description}")))
        except scenarios.ScenarioError as error:
            console.print(safe(name, "bold").append(": ").append(safe("invalid", "red"))
                          .append(safe(f": {error.problems[0]}")))


@app.command()
@guarded
def report(
    run_id: str = typer.Argument("latest", help="Run id, run folder, or 'latest'."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """(Re)draw a stored run's charts and write its self-contained report.html."""
    from bench.model import Run
    from bench.report import write_run_report

    stored = Run.load(results_store.resolve_run(run_id, results_dir))
    try:
        path = write_run_report(stored)
    except OSError as error:
        raise ResultsError(f"cannot write the report: {error}") from None
    console.print(safe(f"report: {path}"))
    _exit_if_unreadable([stored], say=True)


@app.command()
@guarded
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more run ids or folders; ratios are to the first."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for compare.html and the chart "
                                       "(default: <results>/compare-<first>-vs-<last>)."),
    results_dir: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Where runs are stored."),
) -> None:
    """Compare stored runs cell by cell (ratio to the first run, with intervals); warn when they differ."""
    from bench.compare import compare_runs, write_compare_report
    from bench.terminal import comparison_table

    run_dirs = [results_store.resolve_run(name, results_dir) for name in runs]
    comparison = compare_runs(run_dirs)
    target = out or results_dir / f"compare-{run_dirs[0].name}-vs-{run_dirs[-1].name}"
    try:
        path = write_compare_report(comparison, target)
    except OSError as error:
        raise ResultsError(f"cannot write the comparison: {error}") from None
    console.print(comparison_table(comparison))
    for caveat in comparison.caveats:
        console.print(Text("warning: ", style="yellow").append(safe(caveat.text)))
    console.print(safe(f"page: {path}"))
    _exit_if_unreadable(comparison.runs, say=True)


def main() -> None:
    from bench.events import terminate_as_interrupt

    terminate_as_interrupt()  # SIGTERM at any moment ends like Ctrl-C: one line, exit 130
    app(prog_name="bench")


if __name__ == "__main__":
    main()
