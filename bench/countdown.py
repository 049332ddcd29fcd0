"""Time remaining in a run, from its plan: each trial's planned warm-up + window, plus a start-up
per launch, corrected by what the run has measured so far.

Pure bookkeeping on events (no rendering, no clock of its own unless given one), so a test can
drive it with a fake clock. The estimate of a launch is the median of the launches of that layer
measured so far, else of every launch so far, else START_PRIOR_S; what a trial takes beyond its
planned seconds (load generator set-up, the sampler settling, files written) is the median
measured so far, else 0.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

from bench.events import PlannedStart

# Only until the first launch is measured (then measured launches replace it): a guess, said as one.
START_PRIOR_S = 2.0


@dataclass
class _Start:
    planned: PlannedStart
    launched: bool = False
    done: int = 0  # trials of this start that ended

    @property
    def layer(self) -> tuple:
        """Launches of one layer (and app: an nginx VM boots faster than a python one) are alike."""
        return self.planned.setup, self.planned.variant, self.planned.app


class Countdown:
    """Elapsed and remaining seconds of a planned run, updated as trials begin and end."""

    def __init__(self, starts: list[PlannedStart], at_most: bool = False, now: Callable[[], float] = time.monotonic,
                 budget_left_s: float | None = None):
        self.now = now
        self.at_most = at_most  # repeat: auto or a budget: the plan is its cap; it may stop earlier
        self.budget_left_s = budget_left_s  # a budget: what was left of it when the plan arrived
        self.began = self.mark = now()  # mark: when the last trial ended (or the plan arrived)
        self.starts = [_Start(start) for start in starts]
        self.start_of = {work.trial: index for index, start in enumerate(starts) for work in start.trials}
        self.seconds = {work.trial: work.seconds for start in starts for work in start.trials}
        self.began_trials: set[str] = set()
        self.ended: set[str] = set()
        self.launches: dict[tuple, list[float]] = {}
        self.extras: list[float] = []  # measured trial time beyond its planned seconds

    @property
    def total(self) -> int:
        return len(self.seconds)

    @property
    def finished(self) -> int:
        return len(self.ended)

    @property
    def guessing(self) -> bool:
        """True until one launch has been measured: the start-ups in the estimate are a guess."""
        return not self.launches

    def trial_begins(self, trial: str) -> None:
        """A TrialStarted event: the launch before it (if it was the first of its start) is over."""
        index = self.start_of.get(trial)
        if index is None:
            return
        start, at = self.starts[index], self.now()
        if not start.launched:
            start.launched = True
            self.launches.setdefault(start.layer, []).append(at - self.mark)
            self.mark = at
        self.began_trials.add(trial)

    def trial_ends(self, trial: str) -> None:
        """A TrialDone or TrialFailed event (a failed launch fails its trials without beginning them)."""
        index = self.start_of.get(trial)
        if index is None or trial in self.ended:
            return
        at, start = self.now(), self.starts[index]
        if trial in self.began_trials:  # since the last boundary: the gap between trials counts too
            self.extras.append(at - self.mark - self.seconds[trial])
        start.launched = True
        start.done += 1
        self.ended.add(trial)
        self.mark = at

    def next_start(self) -> PlannedStart | None:
        """The start to launch next when the last one has ended (None while a start still has trials to run)."""
        waiting = [start for start in self.starts if start.done < len(start.planned.trials)]
        if not waiting or any(start.launched for start in waiting):
            return None
        return waiting[0].planned

    def launch_estimate(self, layer: tuple[str, str]) -> float:
        measured = self.launches.get(layer) or [value for values in self.launches.values() for value in values]
        return statistics.median(measured) if measured else START_PRIOR_S

    @property
    def extra_estimate(self) -> float:
        return max(0.0, statistics.median(self.extras)) if self.extras else 0.0

    def elapsed_s(self) -> float:
        return self.now() - self.began

    def remaining_s(self) -> float:
        """Seconds left: every launch and trial not yet over, less what the current one has already taken."""
        items = []  # seconds estimated for what is not over, in plan order
        for start in self.starts:
            if start.done == len(start.planned.trials):
                continue
            if not start.launched:
                items.append(self.launch_estimate(start.layer))
            items += [self.seconds[work.trial] + self.extra_estimate
                      for work in start.planned.trials if work.trial not in self.ended]
        if not items:
            return 0.0
        # The first thing not over is under way since the last boundary (a launch or a trial ended);
        # when it overruns its estimate, the estimate waits rather than going below what is left.
        planned = sum(items) - min(items[0], self.now() - self.mark)
        if self.budget_left_s is None:
            return planned
        return max(0.0, min(planned, self.budget_left_s - self.elapsed_s()))


def clock(seconds: float) -> str:
    """`1:05`, `12:40`, `1:02:03`: a duration as a wall clock shows it."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
