"""Commands about this machine and the tool itself: doctor, app, clean, scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bench import scenario as scenarios
from bench.cli.common import DEFAULT_RESULTS, app, console, guarded
from bench.outputs.terminal import safe


@app.command()
@guarded
def doctor(as_json: bool = typer.Option(False, "--json", help="The same as JSON (bench hosts check reads it).")) -> None:
    """Say which setups can run here and, for each missing piece, the command that fixes it."""
    from bench.doctor import doctor_report, print_doctor

    found = doctor_report()
    if as_json:
        print(json.dumps(found, default=str))
    else:
        print_doctor(console, found)


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
    """Remove what a killed run, fleet or probe left behind (containers, VMs, bare apps, temp folders,
    half-built cache entries, a fleet's folders); runs still going are spared."""
    from bench import leftovers

    if run_id is not None:
        leftovers.refuse_live_run(run_id, results_dir)
    removed = leftovers.clean(run_id, caches=images)
    if run_id is None:  # fleets whose runner was killed: what they left on their hosts and here
        from bench.fleet.cleanup import clean_fleets

        removed += clean_fleets(results_dir)
    for line in [f"removed {item}" for item in removed] or ["nothing to clean"]:
        console.print(safe(line), soft_wrap=True)  # one print per line: safe() shows a newline inside as \n


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


