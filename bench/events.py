"""Progress events: how the runner tells whoever renders (terminal, live view, tests) what happens.

One frozen dataclass per kind of event, each with typed fields; a renderer dispatches on the class
(`isinstance`, `match`) and reads attributes. `kind` is each class's stable name on the wire: a
fleet forwards a host's events between processes as JSON (bench.event_wire).

A leaf module, so that rendering progress never imports the runner, the setups or the load
generator: the records some events carry are typed for readers only (TYPE_CHECKING).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

if TYPE_CHECKING:
    from bench.results import RunRecord, TrialRecord


@dataclass(frozen=True)
class PlannedWork:
    """One trial the runner will run: what a countdown needs to know of it."""

    trial: str  # the trial id, as TrialDone reports it
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


@dataclass(frozen=True)
class Event:
    """What every event says: a line for a human, and the trial counters when it concerns a trial."""

    kind: ClassVar[str] = "event"  # each kind's stable name on the wire (bench.event_wire)

    message: str  # one line, as the plain progress prints it
    done: int = 0  # trials begun so far, this one included (TrialStarted), else 0
    total: int = 0  # trials planned in all rounds (TrialStarted), else 0
    host: str | None = None  # the fleet host whose run this is (set when a fleet forwards it), else None


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """The run's folder is known (a fleet's: its fleet folder)."""

    kind: ClassVar[str] = "start"
    run_dir: Path


@dataclass(frozen=True)
class Preparing(Event):
    """A setup or an app builds or checks what it needs before the trials."""

    kind: ClassVar[str] = "prepare"


@dataclass(frozen=True)
class Warned(Event):
    """A warning the run goes on after: a setup skipped (it cannot run here), a release that failed,
    a machine that did not go quiet."""

    kind: ClassVar[str] = "skip"  # its name from when skips were its only use


@dataclass(frozen=True, kw_only=True)
class Planned(Event):
    """Every start and trial still to run, in order: what a countdown and the live bars start from."""

    kind: ClassVar[str] = "plan"
    starts: tuple[PlannedStart, ...]
    at_most: bool = False  # repeat: auto or a budget: the plan is a cap, the run may stop earlier
    budget_left_s: float | None = None  # what is left of the scenario's time budget, None without one
    record: RunRecord | None = None  # the run so far without the trials to come (the renderer's own copy)


@dataclass(frozen=True, kw_only=True)
class TrialStarted(Event):
    """A trial begins; `done`/`total` count it among the planned trials."""

    kind: ClassVar[str] = "trial"
    trial: str  # the trial id
    setup: str
    variant: str
    workload: str
    app: str | None = None  # the app it runs
    narration: str = ""  # what a class hears about this layer


@dataclass(frozen=True)
class DiskEstimate(Event):
    """What a long trial is about to store on disk."""

    kind: ClassVar[str] = "disk"


@dataclass(frozen=True, kw_only=True)
class TrialEnded(Event):
    """A trial ended, measured (TrialDone) or failed (TrialFailed); never sent as itself."""

    kind: ClassVar[str] = "trial_ended"
    trial: str  # the trial id
    record: TrialRecord | None = None  # what was stored; None once forwarded by a fleet (it stays in run.json)


@dataclass(frozen=True, kw_only=True)
class TrialDone(TrialEnded):
    """A trial was measured; the message is its line of figures."""

    kind: ClassVar[str] = "trial_done"


@dataclass(frozen=True, kw_only=True)
class TrialFailed(TrialEnded):
    """A trial failed; the message says why."""

    kind: ClassVar[str] = "trial_failed"


@dataclass(frozen=True)
class RepeatDecided(Event):
    """repeat: auto stopped, or a round is measured again on a busy machine."""

    kind: ClassVar[str] = "repeat"


@dataclass(frozen=True, kw_only=True)
class RunDone(Event):
    """The run (a fleet's: every host) is over and stored."""

    kind: ClassVar[str] = "done"
    run_dir: Path


@dataclass(frozen=True)
class HostChanged(Event):
    """A fleet host's state changed: reached, installed, fetched, failed."""

    kind: ClassVar[str] = "host"


@dataclass(frozen=True)
class HostLog(Event):
    """A line a fleet host wrote on stderr (or anything it sent that this version cannot read)."""

    kind: ClassVar[str] = "log"


@dataclass(frozen=True)
class SplitAnnounced(Event):
    """Where a split run's app listens and where its load comes from."""

    kind: ClassVar[str] = "split"


# Every kind an event can be on the wire, by its name.
EVENT_CLASSES: dict[str, type[Event]] = {cls.kind: cls for cls in (
    RunStarted, Preparing, Warned, Planned, TrialStarted, DiskEstimate, TrialDone, TrialFailed, RepeatDecided,
    RunDone, HostChanged, HostLog, SplitAnnounced)}


ProgressFn = Callable[[Event], None]


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
