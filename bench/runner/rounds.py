"""The interleaved rounds of a run: a fixed count, or (repeat: auto, or a budget) until every
headline verdict is settled, the budget is spent or the cap is reached; with `wait_quiet` each
round waits for a quiet machine first, with `remeasure_busy` a round that others disturbed is
measured again (at most MAX_ROUND_ATTEMPTS times). The record says how the rounds ended."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from bench.events import ProgressFn, RepeatDecided, Warned
from bench.metrics.quiet import wait_until_quiet
from bench.model import BUSY_MACHINE_CORES
from bench.records import QuietWait, RepeatOutcome
from bench.results import RunRecord, TrialRecord, save_run
from bench.runner.plan import PlannedTrial, round_starts, stop_after
from bench.scenario import Scenario

MAX_ROUND_ATTEMPTS = 3  # remeasure_busy: a busy round is measured at most this many times

Announce = Callable[[int, bool], None]  # (rounds at most, whether that is a cap) -> the plan is told
RunStart = Callable[[list[PlannedTrial], int], None]  # (a start's trials, trials in the run) -> measured


class Rounds:
    """The round loop of one run; the runner gives it the way to announce the plan and to measure a start."""

    def __init__(self, scenario: Scenario, record: RunRecord, run_dir: Path, progress: ProgressFn, began: float):
        self.scenario, self.record, self.run_dir, self.progress, self.began = scenario, record, run_dir, progress, began

    def run(self, pairs: list[tuple], announce: Announce, run_start: RunStart) -> None:
        """Every round of the (app, setup) pairs; `run_start` measures one start of a round."""
        scenario = self.scenario
        fixed = scenario.repeat if isinstance(scenario.repeat, int) and scenario.budget is None else None
        cap = fixed if fixed is not None else scenario.repeat_cap
        announce(cap, fixed is None)
        per_round = sum(len(group) for group in round_starts(scenario, pairs, 0))
        outcome = {"mode": "fixed" if fixed is not None else "budget" if scenario.budget else "auto",
                   "cap": cap, "budget_s": scenario.budget, "stopped_by": "count" if fixed is not None else "cap"}
        durations: list[float] = []
        for repeat in range(cap):
            began = time.monotonic()
            self._round(pairs, repeat, lambda group: run_start(group, per_round * cap))
            durations.append(time.monotonic() - began)
            outcome.update(rounds=repeat + 1, elapsed_s=round(time.monotonic() - self.began, 1))
            if fixed is not None:
                continue
            stop, detail = stop_after(self.record, scenario, repeat + 1, durations, time.monotonic() - self.began)
            outcome["detail"] = detail
            if stop:
                outcome["stopped_by"] = stop
                break
        self.record.repeat_outcome = RepeatOutcome.model_validate(outcome)
        save_run(self.run_dir, self.record)
        if fixed is None:
            self.progress(RepeatDecided(f"{outcome['rounds']} rounds in {outcome['elapsed_s']:.0f} s: stopped by "
                                        f"{outcome['stopped_by']}; {outcome.get('detail', '')}"))

    def _round(self, pairs: list[tuple], repeat: int, run_start: Callable[[list[PlannedTrial]], None]) -> None:
        """One round of every pair, in its shuffled order; measured again (twice at most) when
        remeasure_busy is set and other processes were busy during it."""
        for attempt in range(MAX_ROUND_ATTEMPTS):
            if self.scenario.wait_quiet:
                self._wait_quiet(repeat)
            starts = round_starts(self.scenario, pairs, repeat, attempt)
            ids = {trial.trial_id for group in starts for trial in group}
            for group in starts:
                run_start(group)
            busy = self._busy_trials(ids)
            if not self.scenario.remeasure_busy or not busy or attempt + 1 == MAX_ROUND_ATTEMPTS:
                return
            worst = max(trial.host.foreign_cpu_cores or 0.0 for trial in busy)
            reason = (f"busy machine: other processes used up to {worst:.2f} cores during round {repeat + 1}; "
                      f"the round was measured again")
            for trial in self.record.trials:
                if trial.trial_id in ids and trial.status == "ok":
                    trial.status, trial.error = "discarded", reason
            save_run(self.run_dir, self.record)
            self.progress(RepeatDecided(f"round {repeat + 1}: {reason}"))

    def _busy_trials(self, ids: set[str]) -> list[TrialRecord]:
        return [trial for trial in self.record.trials if trial.trial_id in ids and trial.status == "ok"
                and (trial.host.foreign_cpu_cores or 0.0) > BUSY_MACHINE_CORES]

    def _wait_quiet(self, repeat: int) -> None:
        wait = wait_until_quiet(BUSY_MACHINE_CORES, lambda message: self.progress(Warned(message)))
        self.record.quiet_waits.append(QuietWait(round=repeat, **wait.as_dict()))
        if not wait.quiet:
            self.progress(Warned(f"round {repeat + 1}: the machine did not go quiet in {wait.waited_s:.0f} s "
                                  f"(others used {wait.others_cores:.2f} cores); measuring anyway"))
