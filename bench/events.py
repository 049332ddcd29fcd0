"""Progress events: how the runner tells whoever renders (terminal, live view, tests) what happens.

A leaf module, so that rendering progress never imports the runner, the setups or the load
generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# What each kind means: start (run folder known), prepare (a setup builds or checks what it
# needs), skip (a setup cannot run here), plan (every start and trial still to run: data["starts"]
# is a list of PlannedStart, data["at_most"] says repeat: auto may stop earlier, data["record"] is
# the run so far without trials to come), trial (a trial begins; data["trial"] is its id), disk
# (what a long trial is about to store), trial_done / trial_failed (a trial ended; data["trial"] is
# its id, data["record"] its TrialRecord), repeat (repeat: auto decided), done (run complete).
# A fleet (bench.fleet) forwards each host's events with data["host"] set, and adds host (a host's
# state changed: reached, installed, fetched, failed), log (a line a host wrote on stderr) and split
# (where a split run's app listens and where its load comes from).
KINDS = ("start", "prepare", "skip", "plan", "trial", "disk", "trial_done", "trial_failed", "repeat", "done", "host",
         "log", "split")


@dataclass(frozen=True)
class Event:
    """A progress report; `done`/`total` count trials, `data` carries ids for the renderer."""

    kind: str
    message: str
    done: int = 0
    total: int = 0
    data: dict = field(default_factory=dict)


ProgressFn = Callable[[Event], None]


@dataclass(frozen=True)
class PlannedWork:
    """One trial the runner will run: what a countdown needs to know of it."""

    trial: str  # the trial id, as trial_done reports it
    workload: str
    kind: str  # load, startup, idle or density
    seconds: float  # warm-up + measured window (0 for a cold start: the launch is the measurement)


@dataclass(frozen=True)
class PlannedStart:
    """One launch of a setup variant and the trials that share it, in the order they run."""

    setup: str
    variant: str
    trials: tuple[PlannedWork, ...]
    narration: str = ""  # what a class hears about this layer (the setup declares it)
    app: str | None = None  # the app it runs, when the run holds several (labels then name it)


def no_progress(event: Event) -> None:
    """A ProgressFn that drops every event."""


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread so cleanup runs as for Ctrl-C.

    A KeyboardInterrupt: raised inside an asyncio callback of the load generator, any other
    exception (BaseException included) is caught and logged by the event loop, and the run went on.
    """


def terminate_as_interrupt() -> None:
    """From now on SIGTERM raises RunInterrupted in the main thread, as Ctrl-C raises KeyboardInterrupt."""
    import signal

    def handler(signum, frame):
        raise RunInterrupted("terminated (SIGTERM)")
    signal.signal(signal.SIGTERM, handler)
