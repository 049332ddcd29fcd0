"""`bench run` and `bench demo`: choose a scenario, run it with a progress view, show and report it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from bench import results as results_store
from bench import scenario as scenarios
from bench.cli.common import DEFAULT_RESULTS, _csv, _print_error, app, console, errors, guarded, open_in_browser
from bench.errors import ExitStatus, Interrupted, LayerbenchError, ResultsError
from bench.outcome import ALLOW_EMPTY_HELP
from bench.outputs.terminal import safe


def apps_help() -> str:
    """The --app help: the registered apps (plugins too), the default first. Their modules are
    declarations that import nothing heavy, so building it keeps `bench --help` fast."""
    from bench.apps import registry

    default = registry.default_kind()
    others = [kind for kind in registry.named_kinds() if kind != default]
    return (f"The app, or several side by side (comma-separated): {', '.join([f'{default} (default)', *others])}. "
            "A user's image: app: {image: ...} in a scenario file.")


HELP = {  # the help of `bench run`'s flags
    "scenario": "A shipped scenario name (see: bench scenarios) or a YAML file. Without it: every available setup, "
                "workloads hello,cpu.",
    "workloads": "Comma-separated workloads: " + ",".join(scenarios.BUILTIN_WORKLOADS),
    "apps_flag": apps_help(),
    "setups_flag": "Comma-separated setups, as `bench doctor` names them.",
    "duration": "Seconds measured per trial.",
    "connections": "Concurrent keep-alive connections.",
    "repeat": "Rounds (every setup once per round, interleaved and shuffled); replaces the scenario's budget.",
    "budget": "A time budget instead of a round count, e.g. 3m: as many rounds as fit, stopping early once "
              "every verdict is settled.",
    "min_effect": "The smallest change called worse or better, and the band called same, e.g. 5% (default: the "
                  "scenario's, 5%).",
    "wait_quiet": "Before each round, wait (up to a minute) until other processes leave the CPUs alone.",
    "remeasure_busy": "Measure a round again (twice at most) when other processes were busy during it; the busy "
                      "trials are kept, set aside.",
    "kernel": "Guest kernel (bzImage) for every setup that boots one (a VM); default: Debian's cloud kernel, "
              "fetched once.",
    "accel": "Accelerator for every setup that boots a kernel: auto (probe KVM, else TCG), kvm, tcg.",
    "resume": "Finish an interrupted run (id or folder) with its own settings; other flags are ignored.",
    "hosts": "Run on these hosts or groups of the inventory in parallel (local = this machine), into one fleet "
             "folder, e.g. labs,local.",
    "inventory": "Ansible inventory (INI, YAML); default $LAYERBENCH_INVENTORY, ./inventory.yml.",
    "load_from": "Drive the load from this host; the app listens on the address it reaches (not loopback). One "
                 "target.",
}


def _chosen_scenario(name: str | None, setup_names: list[str] | None, workload_names: list[str] | None,
                     vm_options: dict, app_names: list[str] | None = None, **fields) -> scenarios.Scenario:
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
    chosen = scenarios.with_apps(chosen, app_names) if app_names else chosen
    if fields.get("repeat") is not None and fields.get("budget") is None:  # a count asked for: no budget
        chosen = chosen.model_copy(update={"budget": None})
    return scenarios.with_option_everywhere(chosen, vm_options) if vm_options else chosen


TRACE_HOPS_HELP = ("Also count the app's own packets at each hop with eBPF (bpftrace; root, BTF, tracefs), beside "
                   "the interface counters.")


@app.command()
@guarded
def run(
    scenario: Optional[str] = typer.Argument(None, help=HELP["scenario"]),
    setups_flag: Optional[str] = typer.Option(None, "--setups", help=HELP["setups_flag"]),
    workloads: Optional[str] = typer.Option(None, "--workloads", help=HELP["workloads"]),
    apps_flag: Optional[str] = typer.Option(None, "--app", help=HELP["apps_flag"]),
    duration: Optional[float] = typer.Option(None, "--duration", min=scenarios.MIN_DURATION_S, max=3600,
                                             help=HELP["duration"]),
    warmup: Optional[float] = typer.Option(None, "--warmup", min=0, max=600, help="Seconds discarded first."),
    connections: Optional[int] = typer.Option(None, "--connections", min=1, max=1024, help=HELP["connections"]),
    repeat: Optional[int] = typer.Option(None, "--repeat", min=1, max=1000, help=HELP["repeat"]),
    budget: Optional[str] = typer.Option(None, "--budget", help=HELP["budget"]),
    min_effect: Optional[str] = typer.Option(None, "--min-effect", help=HELP["min_effect"]),
    wait_quiet: bool = typer.Option(False, "--wait-quiet", help=HELP["wait_quiet"]),
    remeasure_busy: bool = typer.Option(False, "--remeasure-busy", help=HELP["remeasure_busy"]),
    out: Path = typer.Option(DEFAULT_RESULTS, "--out", help="Folder that receives the run folder."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html at the end."),
    narrate: bool = typer.Option(False, "--narrate", help="Explain each layer as its first trial starts."),
    kernel: Optional[Path] = typer.Option(None, "--kernel", help=HELP["kernel"]),
    accel: Optional[str] = typer.Option(None, "--accel", help=HELP["accel"]),
    resume: Optional[str] = typer.Option(None, "--resume", help=HELP["resume"]),
    hosts: Optional[str] = typer.Option(None, "--hosts", help=HELP["hosts"]),
    inventory: Optional[Path] = typer.Option(None, "--inventory", "-i", help=HELP["inventory"]),
    limit: Optional[str] = typer.Option(None, "--limit", help="Limit the hosts as ansible-playbook does."),
    load_from: Optional[str] = typer.Option(None, "--load-from", help=HELP["load_from"]),
    trace_hops: bool = typer.Option(False, "--trace-hops", help=TRACE_HOPS_HELP),
    allow_empty: bool = typer.Option(False, "--allow-empty", help=ALLOW_EMPTY_HELP),
) -> None:
    """Run a scenario: every setup under every workload, repeated and interleaved.

    Exit status: 0 all measured; 1 an error (bad input, the report could not be written, or no
    trial measured at all: every setup skipped or every trial failed, unless --allow-empty);
    3 some trials failed; 4 a setup named with --setups could not run here and was skipped;
    130 interrupted (the trials measured so far are kept).
    """
    if resume is not None:
        resume_dir, chosen = _resumable(resume, out)
    else:
        resume_dir = None
        vm_options = {k: v for k, v in (("kernel", str(kernel) if kernel else None), ("accel", accel)) if v}
        chosen = _chosen_scenario(scenario, _csv("--setups", setups_flag), _csv("--workloads", workloads),
                                  vm_options, _csv("--app", apps_flag), duration=duration, warmup=warmup,
                                  connections=connections, repeat=repeat, budget=_seconds("--budget", budget),
                                  min_effect=_fraction("--min-effect", min_effect), wait_quiet=wait_quiet or None,
                                  remeasure_busy=remeasure_busy or None)
    on_hosts = bool(hosts or load_from) and resume_dir is None
    _ready(chosen, out, here=not on_hosts)
    if on_hosts:
        from bench.cli.fleet import run_on_hosts
        run_dir = run_on_hosts(chosen, hosts, inventory, limit, load_from, out, report)
    else:
        run_dir = _execute(chosen, out, resume_dir, narrate, trace_hops)
    if run_dir is not None:  # a fleet is printed and reported by run_on_hosts
        _finish(run_dir, report, _csv("--setups", setups_flag) if resume is None else None, allow_empty)


def _seconds(flag: str, text: str | None) -> float | None:
    from bench.units import parse_duration_s

    if text is None:
        return None
    seconds = parse_duration_s(text)
    if seconds is None:
        raise LayerbenchError(f"{flag}: a duration such as 3m, 90s or 1m30s, not {text[:40]!r}")
    return seconds


def _fraction(flag: str, text: str | None) -> float | None:
    from bench.units import parse_fraction

    if text is None:
        return None
    fraction = parse_fraction(text)
    if fraction is None:
        raise LayerbenchError(f"{flag}: a percentage such as 5%, not {text[:40]!r}")
    return fraction


def _ready(chosen: scenarios.Scenario, out: Path, here: bool) -> None:
    """Before anything is printed or stored: an app that cannot run here (a user's image that is not
    present) is one line, when the run is `here` (a fleet's hosts check their own); then the results
    folder; then the scenario's name and what a killed run left running."""
    if here:
        from bench.runner import check_apps

        check_apps(chosen)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ResultsError(f"cannot create results folder {out}: {error.strerror or error}") from None
    console.print(safe(chosen.name, "bold").append(safe(f": {chosen.description}" if chosen.description else "")))
    _warn_leftovers()


def _resumable(resume: str, out: Path) -> tuple[Path, scenarios.Scenario]:
    """The folder and scenario of an interrupted run to finish; refused while its runner still runs."""
    from bench.fleet.record import resolve as fleet_folder
    from bench.runlock import refuse_if_live

    fleet_dir = fleet_folder(resume, out)
    if fleet_dir is not None:
        raise LayerbenchError(f"{fleet_dir.name} is a fleet, which cannot be resumed: each host's run is its own. "
                              f"Run the hosts that did not finish again (bench run ... --hosts NAMES), and "
                              f"`bench clean` first if its runner was killed; `bench compare` puts the runs side by "
                              f"side")
    resume_dir = results_store.resolve_run(resume, out)
    record = results_store.load_run(resume_dir)
    refuse_if_live(resume_dir, record.runner_pid)  # one writer per run (the runner's lock enforces it)
    return resume_dir, scenarios.Scenario.model_validate(record.scenario.stored())


def _execute(chosen: scenarios.Scenario, out: Path, resume_dir: Path | None, narrate: bool,
             trace_hops: bool = False) -> Path:
    """Run (or resume) with a progress view; Interrupted naming where the measured trials are."""
    from bench.events import RunStarted
    from bench.outputs.live import LiveView, suits
    from bench.outputs.progress import ProgressView
    from bench.runner import resume_run, run_scenario

    if trace_hops:
        from bench.metrics.hoptrace import unavailable_reason

        reason = unavailable_reason()
        console.print(safe(f"--trace-hops: {reason}; the interface counters only" if reason else
                           "--trace-hops: bpftrace counts the app's own packets at each hop beside the counters"))
    run_dir = None
    view_class = LiveView if suits(console) else ProgressView  # plain lines for pipes, CI, NO_COLOR, TERM=dumb
    try:
        with view_class(console, narrate=narrate) as view:
            def progress(event):
                nonlocal run_dir
                if isinstance(event, RunStarted):
                    run_dir = event.run_dir
                view(event)

            if resume_dir is not None:
                return resume_run(resume_dir, progress)
            return run_scenario(chosen, out, progress, command_line=["bench", *sys.argv[1:]], trace_hops=trace_hops)
    except KeyboardInterrupt:  # RunInterrupted (SIGTERM) is one too
        where = f"; the trials measured so far are in {run_dir}" if run_dir else ""
        raise Interrupted(f"interrupted{where}") from None
    except OSError as error:
        raise ResultsError(f"cannot write results: {error}") from None


def _finish(run_dir: Path, report: bool, named: list[str] | None, allow_empty: bool) -> None:
    """Print the run, write its report, and exit with the status the run earned (bench.outcome)."""
    from bench.model import Run
    from bench.outcome import run_exit_status
    from bench.outputs.terminal import print_run

    measured = Run.load(run_dir)
    print_run(console, measured)
    written = _write_report(run_dir) if report else True
    console.print(safe(f"results: {run_dir}"), soft_wrap=True)  # a path stays one line, to copy
    status = run_exit_status(results_store.load_run(run_dir), named, allow_empty)  # NothingMeasured: one line, exit 1
    if not written:
        raise typer.Exit(int(ExitStatus.ERROR))
    if status != ExitStatus.OK:
        raise typer.Exit(int(status))


def _warn_leftovers() -> None:
    from bench import leftovers

    found = leftovers.find()
    if found:
        errors.print(Text("warning: ", style="yellow").append(safe(
            f"{len(found)} leftover(s) from an earlier run are still running ({', '.join(found[:3])}"
            f"{', ...' if len(found) > 3 else ''}); they skew measurements: bench clean")))


def _write_report(run_dir: Path) -> bool:
    from bench.outputs.report import write_report

    try:
        path = write_report(run_dir)
    except Exception as error:  # a report problem must never hide the measured results: they are printed
        _print_error(f"report not written: {error}")
        return False
    console.print(safe(f"report: {path}"), soft_wrap=True)  # a path stays one line, to copy
    return True


def _print_journey(out: Path) -> None:
    from bench.outputs.journey_screen import print_journey
    from bench.model import Run

    try:
        print_journey(console, Run.load(results_store.resolve_run("latest", out)))
    except (ResultsError, OSError):
        pass  # no run to show: the error that stopped it was already said


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
    try:
        run.__wrapped__(scenario=name, setups_flag=None, workloads=None, apps_flag=None, duration=None, warmup=None,
                        connections=None, repeat=None, budget=None, min_effect=None, wait_quiet=False,
                        remeasure_busy=False, out=out, report=True, narrate=True, kernel=None, accel=None,
                        resume=None, hosts=None, inventory=None, limit=None, load_from=None, trace_hops=False,
                        allow_empty=False)
    except typer.Exit:  # some trials failed or a setup was skipped: what was measured still has its journey
        _print_journey(out)
        raise
    _print_journey(out)  # the final screen: the journey of one request through each layer
    if open_report and (results_store.resolve_run("latest", out) / "report.html").exists():
        open_in_browser(results_store.resolve_run("latest", out) / "report.html")


