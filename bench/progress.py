"""Progress of a run on the terminal: a bar for the trials and a line per finished trial, with
the narration of each layer when asked for. Renders events only (bench.events)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from bench.events import Event
from bench.terminal import safe


class ProgressView:
    """Renders runner events: a bar for the trials, a line per finished trial."""

    def __init__(self, console: Console, narrate: bool = False):
        self.console = console
        self.narrate = narrate
        self.narrated: set[str] = set()
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self) -> "ProgressView":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.__exit__(*exc_info)

    def __call__(self, event: Event) -> None:
        if event.kind == "trial":
            self._trial_begins(event)
        elif event.kind in ("trial_done", "trial_failed"):
            self.console.print(Text("  ").append(safe(event.message, "red" if event.kind == "trial_failed" else None)))
            if self.task is not None:
                self.progress.advance(self.task)
        elif event.kind in ("skip", "repeat"):
            self.console.print(safe(event.message, "yellow"))
        elif event.kind in ("start", "prepare", "disk"):
            self.console.print(safe(event.message, "dim"))

    def _trial_begins(self, event: Event) -> None:
        setup = str(event.data.get("setup"))
        if self.narrate and setup not in self.narrated:
            self.narrated.add(setup)
            line = Text("\n").append(safe(f"now, {setup}", "bold cyan")).append(": ")
            self.console.print(line.append(safe(event.data.get("narration") or "")))
        if self.task is None:
            self.task = self.progress.add_task("trials", total=event.total)
        self.progress.update(self.task, description=safe(event.message).plain, completed=event.done - 1)
