"""One error family and one table of exit codes for the whole tool.

Every problem a user can act on is a `LayerbenchError` whose lines are what the command line
prints (one line each, no traceback); `exit_status` says how `bench` exits. The command line maps
errors to exit codes in one place (`bench.cli.guarded`), so no command decides it on its own.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1  # a problem the message explains (bad input, missing engine, unreadable results)
    INCOMPLETE = 3  # the run finished but some trials failed
    SKIPPED = 4  # the run finished, but a setup named with --setups could not run here (bench demo: 0)
    REGRESSION = 5  # bench compare --fail-on: a change beyond a threshold, or a cell the gate could not check
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; results measured so far are kept


class LayerbenchError(Exception):
    """A problem with a message a user can act on; `lines` are printed one per line."""

    exit_status: ExitStatus = ExitStatus.ERROR

    @property
    def lines(self) -> list[str]:
        return [str(self)]


class ProblemsError(LayerbenchError):
    """One or more problems in a file a user wrote; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))

    @property
    def lines(self) -> list[str]:
        return list(self.problems)


class ScenarioError(ProblemsError):
    """One or more problems in a scenario (file, flags or stored run), one line each."""


class SetupError(LayerbenchError):
    """A setup could not prepare, start or stop; the message is one line a user can act on."""


class KernelError(SetupError):
    """No usable guest kernel; the message says how to get one."""


class ResultsError(LayerbenchError):
    """A run folder that cannot be read or written; the message names the file."""


class Interrupted(LayerbenchError):
    """Ctrl-C or SIGTERM stopped a command; what was measured so far is kept."""

    exit_status = ExitStatus.INTERRUPTED


class Regression(LayerbenchError):
    """The regression gate failed: a measurable change beyond a threshold, or a cell it could not check."""

    exit_status = ExitStatus.REGRESSION
