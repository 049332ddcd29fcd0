"""The `bench` command's first code. Importing the command line (Typer, rich, pydantic) takes
about half a second; Ctrl-C or SIGTERM in that time ends like one a moment later would: one
line, exit 130, no traceback (nothing has been started yet, so nothing is left behind)."""

from __future__ import annotations

import sys


def main() -> None:
    from bench.events import terminate_as_interrupt  # standard library only: quick to import

    terminate_as_interrupt()
    try:
        from bench.cli import main as command_line
    except KeyboardInterrupt:  # RunInterrupted (SIGTERM) is one too
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    command_line()
