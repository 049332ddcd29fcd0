"""Progress of a run as plain lines, for wherever the live panel does not suit (a pipe, CI, NO_COLOR,
TERM=dumb): one line per finished trial with how many of the planned trials are done, and the
narration of each layer when asked for. It only ever appends lines: no cursor hidden, no line
erased or redrawn, even on a terminal. Renders events only (bench.events)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from bench.events import (DiskEstimate, Event, Planned, Preparing, RepeatDecided, RunStarted, TrialEnded, TrialFailed,
                          TrialStarted, Warned)
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
        match event:
            case Planned():
                total = sum(len(start.trials) for start in event.starts)
                self.planned = f"at most {total}" if event.at_most else str(total)
            case TrialStarted():
                self._trial_begins(event)
            case TrialEnded():
                self.finished += 1
                line = Text("  ").append(safe(event.message, "red" if isinstance(event, TrialFailed) else None))
                self.console.print(line.append(safe(f"  ({self.finished}/{self.planned})" if self.planned else "",
                                                    "dim")))
            case Warned() | RepeatDecided():
                self.console.print(safe(event.message, "yellow"))
            case RunStarted() | Preparing() | DiskEstimate():
                self.console.print(safe(event.message, "dim"))

    def _trial_begins(self, event: TrialStarted) -> None:
        if self.narrate and event.setup not in self.narrated:
            self.narrated.add(event.setup)
            line = Text("\n").append(safe(f"now, {event.setup}", "bold cyan")).append(": ")
            self.console.print(line.append(safe(event.narration)))
