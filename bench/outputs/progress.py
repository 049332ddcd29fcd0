"""Progress of a run as plain lines, for wherever the live panel does not suit (a pipe, CI, NO_COLOR,
TERM=dumb): one line per finished trial with how many of the planned trials are done, and the
narration of each layer when asked for. It only ever appends lines: no cursor hidden, no line
erased or redrawn, even on a terminal. Renders events only (bench.events)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from bench.events import Event
from bench.outputs.terminal import safe


class ProgressView:
    """Renders runner events as plain lines: one per finished trial, `(ended/planned)` after it."""

    def __init__(self, console: Console, narrate: bool = False):
        self.console = console
        self.narrate = narrate
        self.narrated: set[str] = set()
        self.finished = 0  # trials ended (measured or failed) in this invocation
        self.planned = ""  # how many it plans: "12", or "at most 60" under repeat: auto

    def __enter__(self) -> "ProgressView":
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def __call__(self, event: Event) -> None:
        if event.kind == "plan":
            total = sum(len(start.trials) for start in event.data.get("starts", ()))
            self.planned = f"at most {total}" if event.data.get("at_most") else str(total)
        elif event.kind == "trial":
            self._trial_begins(event)
        elif event.kind in ("trial_done", "trial_failed"):
            self.finished += 1
            line = Text("  ").append(safe(event.message, "red" if event.kind == "trial_failed" else None))
            self.console.print(line.append(safe(f"  ({self.finished}/{self.planned})" if self.planned else "", "dim")))
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
