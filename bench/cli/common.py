"""What every `bench` command shares: the Typer app, the consoles, and `guarded`, the one place
that turns errors into exit codes (every LayerbenchError prints its lines in red and exits with
its status; no traceback reaches a user for a problem they can fix)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from bench.errors import ExitStatus, LayerbenchError
from bench.outputs.terminal import safe

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="layerbench: what does each virtualization layer cost? The same app runs as a bare "
                       "process, in a container and in a VM under the same load; layerbench measures "
                       "throughput, latency, CPU per request, memory and start-up, and draws the difference.")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

DEFAULT_RESULTS = Path("results")


def _print_error(line: str) -> None:
    # soft_wrap: one line, even when piped; safe(): user text is never markup
    errors.print(Text("error: ", style="red").append(safe(line)), soft_wrap=True)


def guarded(command):
    """Map errors to exit codes for one command: the one place that decides how `bench` exits."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LayerbenchError as error:
            for line in error.lines:
                _print_error(line)
            raise typer.Exit(int(error.exit_status)) from None
        except KeyboardInterrupt:
            _print_error("interrupted")
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        except OSError as error:  # the disk or the permissions: name the file, no traceback
            where = f" ({error.filename})" if error.filename else ""
            _print_error(f"{error.strerror or error}{where}")
            raise typer.Exit(int(ExitStatus.ERROR)) from None
    return wrapper


def exit_if_unreadable(runs: list, say: bool) -> None:
    """Exit 1 when a raw trial file of these runs (bench.model.Run) could not be used; `say`: one
    line per file on stderr (the table view lists them with its other warnings)."""
    unreadable = [caveat for run in runs for caveat in run.caveats() if caveat.kind == "unreadable"]
    if not unreadable:
        return
    for caveat in unreadable if say else []:
        _print_error(caveat.text)
    raise typer.Exit(int(ExitStatus.ERROR))


def _csv(flag: str, value: Optional[str]) -> list[str] | None:
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:  # "--setups ," must not silently mean "all of them"
        raise LayerbenchError(f"{flag} names nothing; give a comma-separated list")
    return parts


def open_in_browser(path: Path) -> None:
    """Open a page in the default browser when a display exists; otherwise say where it is."""
    from bench.browser import open_page

    if not open_page(path):
        console.print(safe(f"no display to open a browser on: open {path.resolve()} yourself"))
