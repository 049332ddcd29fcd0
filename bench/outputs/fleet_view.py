"""A fleet on the terminal: its live progress (one bar per host, each host's lines prefixed with
its name) and, once stored, the machines side by side and the comparison across hosts."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bench.events import (Event, HostLog, Preparing, RepeatDecided, RunDone, RunStarted, SplitAnnounced, TrialEnded,
                          TrialFailed, TrialStarted, Warned)
from bench.fleet.model import Fleet
from bench.outputs.live import suits
from bench.outputs.terminal import comparison_table, safe

HOST_STYLES = ("cyan", "magenta", "green", "blue", "yellow")
# How a host's line of each kind of event looks (other kinds: plain).
EVENT_STYLES: dict[type[Event], str] = {TrialFailed: "red", Warned: "yellow", RepeatDecided: "yellow",
                                        SplitAnnounced: "bold yellow", Preparing: "dim", RunStarted: "dim",
                                        HostLog: "dim", RunDone: "dim"}


class FleetProgressView:
    """Renders a fleet's events: a bar per host while it runs trials, a line per finished trial.
    Where the live view does not suit (no terminal, NO_COLOR, TERM=dumb, CI) there are no bars, only
    plain appended lines: a bar redraws and hides the cursor whatever NO_COLOR says."""

    def __init__(self, console: Console):
        self.console = console
        self.bars = suits(console)
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.tasks: dict[str, int] = {}
        self.styles: dict[str, str] = {}

    def __enter__(self) -> "FleetProgressView":
        if self.bars:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bars:
            self.progress.__exit__(*exc_info)

    def _prefix(self, host: str) -> Text:
        style = self.styles.setdefault(host, HOST_STYLES[len(self.styles) % len(HOST_STYLES)])
        return safe(f"[{host}] ", style)

    def __call__(self, event: Event) -> None:
        host = event.host
        if host is None:  # the fleet's own lines
            self.console.print(safe(event.message, "yellow" if isinstance(event, (Warned, SplitAnnounced)) else "dim"))
            return
        if isinstance(event, TrialStarted):
            self._bar(host, event)
            return
        indent = "  " if isinstance(event, TrialEnded) else ""
        self.console.print(self._prefix(host).append(indent).append(safe(event.message, EVENT_STYLES.get(type(event)))))
        if isinstance(event, TrialEnded) and host in self.tasks:
            self.progress.advance(self.tasks[host])

    def _bar(self, host: str, event: TrialStarted) -> None:
        if not self.bars:
            return
        if host not in self.tasks:
            self.tasks[host] = self.progress.add_task(host, total=event.total)
        self.progress.update(self.tasks[host], description=f"{host}: {safe(event.message).plain}",
                             total=event.total, completed=max(0, event.done - 1))


def machines_table(fleet: Fleet) -> Table:
    table = Table(title=safe(f"fleet {fleet.fleet_id} ({fleet.scenario_name}, {fleet.status}): "
                             f"the machines side by side"), title_justify="left")
    table.add_column("what")
    for outcome in fleet.hosts:
        table.add_column(safe(outcome.name), overflow="fold")
    for what, values in fleet.machines():
        table.add_row(safe(what), *(safe(value) for value in values))
    return table


def print_fleet(console: Console, fleet: Fleet) -> None:
    """The machines, the comparison across hosts (ratios to the first), then every warning."""
    console.print(machines_table(fleet))
    if fleet.comparison is not None:
        console.print(comparison_table(fleet.comparison))
    elif fleet.runs:
        from bench.outputs.terminal import print_run

        for run in fleet.runs.values():
            print_run(console, run)
    for caveat in fleet.caveats():
        console.print(Text("warning: ", style="yellow").append(safe(caveat.text)))
    console.print(safe(f"fleet: {fleet.fleet_dir}"))


def fleet_summary(fleet: Fleet) -> dict:
    """`bench show FLEET --format json`: fleet.json, each host's summary, and the comparison."""
    from bench.outputs.summary import summarize

    return {"fleet": fleet.stored(),
            "machines": {what: values for what, values in fleet.machines()},
            "hosts": {name: summarize(run) for name, run in fleet.runs.items()},
            "comparison": fleet.comparison.as_dict() if fleet.comparison is not None else None,
            "warnings": [caveat.text for caveat in fleet.caveats()]}
