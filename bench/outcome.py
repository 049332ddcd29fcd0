"""How a command that measures or checks ends: one rule for every such command.

Exit 0 says something was done: a run measured at least one trial, a gate made at least one check.
A run that measured nothing (every setup skipped, every trial failed) is not a success, and a gate
that checked nothing has not passed (bench.gate applies the second half), whatever else went
right: in CI both would be a green build that proved nothing. `--allow-empty` accepts either on
purpose. Commands that only read (show, report, list) exit by what they could read, not by this.
"""

from __future__ import annotations

from bench.errors import ExitStatus, LayerbenchError

ALLOW_EMPTY_HELP = "Accept a run that measured no trial as a success (default: exit 1)."


class NothingMeasured(LayerbenchError):
    """A run ended without one measured trial; the message says why (exit 1)."""


def why_empty(record) -> str:
    """Why a run (bench.results.RunRecord) measured nothing, in words: skips, failures or no plan."""
    if record.trials:
        first = next((trial.error for trial in record.trials if trial.error), None)
        return f"all {len(record.trials)} trial(s) failed" + (f" (first: {first})" if first else "")
    if record.skipped:
        reasons = dict.fromkeys(str(entry.reason or "no reason recorded") for entry in record.skipped)
        return "every setup was skipped: " + "; ".join(reasons)
    return "the run planned no trial"


def run_exit_status(record, named_setups: list[str] | None, allow_empty: bool) -> ExitStatus:
    """The status a finished run earned (bench.results.RunRecord): NothingMeasured when no trial was
    measured (unless allow_empty); then 3 when a trial failed, 4 when a setup named with --setups
    was skipped, else 0. See `bench run --help`."""
    if not record.ok_trials() and not allow_empty:
        raise NothingMeasured(f"nothing measured: {why_empty(record)} (--allow-empty accepts an empty run)")
    if any(trial.status == "failed" for trial in record.trials):
        return ExitStatus.INCOMPLETE
    if any(entry.setup in (named_setups or []) for entry in record.skipped):
        return ExitStatus.SKIPPED  # asked for by name and not measured: a script must not take the run for complete
    return ExitStatus.OK
