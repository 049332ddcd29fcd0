"""The `bench` commands for several machines: `bench run --hosts/--load-from` (called from
bench.cli.run), `bench hosts check`, `bench load` (a split run's generator on the load host),
`bench remote-run` (what a fleet runs on each host), and fleets for show/report/compare/list.

Imports nothing heavy at module level: reading results must not load setups or the runner.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from bench.cli.common import app, console, guarded
from bench.errors import ExitStatus, LayerbenchError, ResultsError
from bench.outputs.terminal import safe

hosts_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Hosts of an Ansible inventory: check what can run where; convert an old hosts file.")
app.add_typer(hosts_app, name="hosts")


def run_on_hosts(chosen, hosts: str | None, inventory: Path | None, limit: str | None, load_from: str | None,
                 out: Path, report: bool) -> Path | None:
    """`bench run --hosts` / `--load-from`: a fleet (printed and reported here, None returned), or a
    split run with this machine as the target (its run folder returned, for the usual finish)."""
    from bench.fleet.inventory import LOCAL, select

    fleet_hosts, found = select(hosts, limit, inventory) if hosts else ([], None)
    load = None
    if load_from:
        if load_from == LOCAL:
            from bench.fleet.inventory import LOCAL_HOST

            load = LOCAL_HOST
        else:
            load_hosts, found = select(load_from, None, inventory if found is None else found.path)
            if len(load_hosts) != 1:
                raise LayerbenchError(f"--load-from {load_from} names {len(load_hosts)} hosts; name one")
            load = load_hosts[0]
    if load is not None and len(fleet_hosts) > 1:
        raise LayerbenchError("--load-from drives one target at a time: name one host in --hosts "
                              "(or none, for this machine)")
    command_line = ["bench", *sys.argv[1:]]
    if load is not None and not fleet_hosts:
        return _split_here(chosen, load, found, out, command_line)
    from bench.fleet.orchestrate import run_fleet
    from bench.outputs.fleet_view import FleetProgressView

    with FleetProgressView(console) as view:
        fleet_dir = run_fleet(chosen, fleet_hosts, found, out, view, command_line, load_from=load)
    _finish_fleet(fleet_dir, report)
    return None


def _split_here(chosen, load, inventory, out: Path, command_line: list[str]) -> Path:
    from bench.errors import Interrupted
    from bench.fleet.split import split_here
    from bench.outputs.live import LiveView, suits
    from bench.outputs.progress import ProgressView

    view_class = LiveView if suits(console) else ProgressView  # as bench run chooses
    say = lambda line: console.print(safe(line, "bold yellow" if "split" in line else "dim"))  # noqa: E731
    if load.is_local:  # refused before any view is drawn
        return split_here(chosen, load, inventory, out, lambda event: None, command_line, say)
    try:
        with view_class(console) as view:
            return split_here(chosen, load, inventory, out, view, command_line, say)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the trials measured so far are under {out}") from None


def _finish_fleet(fleet_dir: Path, report: bool) -> None:
    from bench.fleet.model import Fleet
    from bench.outputs.fleet_view import print_fleet

    fleet = Fleet.load(fleet_dir)
    print_fleet(console, fleet)
    if report:
        try:
            console.print(safe(f"report: {report_fleet(fleet_dir)}"), soft_wrap=True)
        except Exception as error:  # a report problem must never hide the measured results
            console.print(Text("warning: ", style="yellow").append(safe(f"report not written: {error}")))
    if not fleet.runs:
        raise LayerbenchError(f"no host's results came home; see {fleet_dir / 'fleet.json'}")
    if fleet.status != "complete":
        raise typer.Exit(int(ExitStatus.INCOMPLETE))


def fleet_folder(name: str, results_dir: Path) -> Path | None:
    """The fleet folder `name` means (id, path or latest), or None when it names a run."""
    from bench.fleet.record import resolve

    return resolve(name, results_dir)


def report_fleet(fleet_dir: Path) -> Path:
    from bench.outputs.fleet_report import write_fleet_report

    try:
        return write_fleet_report(fleet_dir)
    except OSError as error:
        raise ResultsError(f"cannot write the fleet report: {error}") from None


def show_fleet(fleet_dir: Path, format: str) -> None:
    from bench.fleet.model import Fleet
    from bench.outputs.fleet_view import fleet_summary, print_fleet

    fleet = Fleet.load(fleet_dir)
    if format == "json":
        print(json.dumps(fleet_summary(fleet), indent=1, default=str, allow_nan=False))
    elif format == "table":
        print_fleet(console, fleet)
    else:  # markdown, csv: the comparison across hosts (or the one host's run)
        from bench.outputs.export import export_comparison, export_run

        if fleet.comparison is not None:
            sys.stdout.write(export_comparison(fleet.comparison, format))
        for run in fleet.runs.values() if fleet.comparison is None else ():
            sys.stdout.write(export_run(run, format))


def expand_runs(names: list[str], results_dir: Path) -> tuple[list[Path], list[str] | None]:
    """`bench compare` arguments as run folders: a fleet stands for every host's run in it."""
    from bench import results
    from bench.fleet import record

    folders, titles, fleets = [], [], False
    for name in names:
        fleet_dir = record.resolve(name, results_dir)
        if fleet_dir is None:
            folder = results.resolve_run(name, results_dir)
            folders.append(folder)
            titles.append(folder.name)
            continue
        fleets = True
        prefix = f"{fleet_dir.name}/" if len(names) > 1 else ""
        for host, folder in record.run_folders(fleet_dir, record.load_fleet(fleet_dir)):
            folders.append(folder)
            titles.append(prefix + host)
    return folders, titles if fleets else None


def fleet_lines(results_dir: Path) -> list[str]:
    """`bench list`: one line per fleet (its hosts and how each ended)."""
    from bench.fleet import record

    lines = []
    for fleet_dir in record.list_fleets(results_dir):
        try:
            fleet = record.load_fleet(fleet_dir)
        except ResultsError as error:
            lines.append(f"{fleet_dir.name}  unreadable: {error}")
            continue
        hosts = ", ".join(f"{outcome.name} {outcome.status}" for outcome in fleet.targets)
        lines.append(f"{fleet.fleet_id}  {fleet.created_at[:16]}  {fleet.scenario.name}  fleet: {hosts}")
    return lines


@hosts_app.command("check")
@guarded
def hosts_check(hosts: Optional[str] = typer.Option(None, "--hosts", help="Hosts or groups of the inventory, "
                                                    "comma-separated, and local (default: all of them, and local)."),
                inventory: Optional[Path] = typer.Option(None, "--inventory", "-i", help="An Ansible inventory "
                                                         "(default $LAYERBENCH_INVENTORY, ./inventory.yml)."),
                limit: Optional[str] = typer.Option(None, "--limit", help="Further limit the hosts, as in Ansible.")
                ) -> None:
    """For each host: reachable or not (Ansible's ping), which setups can run there, and the command that
    fixes each one that cannot. Installs layerbench on a host that lacks it (a run would need it)."""
    from bench.fleet.check import check_hosts, check_lines
    from bench.fleet.inventory import select

    chosen, found = select(hosts if hosts is not None else "all,local", limit, inventory)
    checks = check_hosts(chosen, found, progress=lambda line: console.print(safe(line, "dim")))
    for check in checks:
        for style, line in check_lines(check):
            console.print(safe(line, style or None))
    if not all(check.reachable for check in checks):
        raise typer.Exit(int(ExitStatus.ERROR))


@hosts_app.command("convert")
@guarded
def hosts_convert(path: Path = typer.Argument(..., help="A layerbench hosts file (hosts.yaml).")) -> None:
    """Print the Ansible inventory (YAML) that says what an old layerbench hosts file said."""
    from bench.fleet.legacy import convert

    sys.stdout.write(convert(path))


@app.command("load")
@guarded
def load_command(port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="The target's port."),
                 spec: Optional[str] = typer.Option(None, "--spec", help="The load as JSON (bench.load.wire): path, "
                                                    "mode, connections, duration_s, warmup_s, rate_rps, processes, host."),
                 generator: str = typer.Option("builtin", "--generator", help="builtin or wrk."),
                 as_json: bool = typer.Option(False, "--json", help="One JSON line with every latency."),
                 serve: bool = typer.Option(False, "--serve", help="Serve load requests, one JSON line each on stdin "
                                            "({port, spec, generator}), one result line each on stdout.")) -> None:
    """Drive HTTP load at spec.host:PORT from this machine (a split run's load host serves it over ssh)."""
    from bench.fleet.split import LocalLoad
    from bench.load.wire import result_to_dict, spec_from_dict

    if serve:
        raise typer.Exit(_serve_load())
    if port is None or spec is None:
        raise LayerbenchError("bench load needs --port and --spec (or --serve)")

    try:
        load_spec = spec_from_dict(json.loads(spec))
    except ValueError as error:
        raise LayerbenchError(f"--spec: {error}") from None
    if generator not in ("builtin", "wrk"):
        raise LayerbenchError(f"--generator must be builtin or wrk, not {generator!r}")
    try:
        result = LocalLoad().run_spec(port, load_spec, generator)
    except (RuntimeError, ValueError) as error:
        raise LayerbenchError(f"load failed: {error}") from None
    if as_json:
        print(json.dumps(result_to_dict(result), allow_nan=False), flush=True)
    else:
        console.print(safe(f"{result.throughput_rps:,.0f} req/s over {result.duration_s:.1f} s to "
                           f"{load_spec.host}:{port}{load_spec.path}, {result.requests} requests, errors "
                           f"{result.errors or 'none'}"))


def _serve_load() -> int:
    """`bench load --serve`: this machine's description first, then one result per request, until EOF."""
    from bench import machine
    from bench.fleet.split import LocalLoad
    from bench.load.wire import result_to_dict, spec_from_dict

    print(json.dumps({"machine": machine.describe()}, default=str), flush=True)
    for line in sys.stdin:
        try:
            request = json.loads(line)
            spec = spec_from_dict(request.get("spec"))
            result = LocalLoad().run_spec(int(request["port"]), spec, str(request.get("generator") or "builtin"))
            reply = {"kind": "load_result", "result": result_to_dict(result)}
        except Exception as error:  # one failed trial, said; the server goes on
            reply = {"kind": "load_error", "message": str(error) or type(error).__name__}
        print(json.dumps(reply, allow_nan=False), flush=True)
    return 0


@app.command("remote-run", hidden=True)
@guarded
def remote_run(job: str = typer.Argument(..., help="The job file the control host wrote (-: the first line of "
                                         "stdin)."),
               out: Path = typer.Option(..., "--out", help="Folder that receives the run folder."),
               watchdog: bool = typer.Option(False, "--watchdog", help="Stop when nobody touches OUT/heartbeat "
                                             "for a minute (the control host is gone).")) -> None:
    """Run a fleet's job on this host, talking JSON lines on stdout (used by bench run --hosts)."""
    from bench.fleet.worker import run_job

    raise typer.Exit(run_job(Path(job), out, watched=watchdog))
