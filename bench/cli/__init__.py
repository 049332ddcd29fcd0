"""The `bench` command: a thin Typer layer that parses, calls the core, and renders.

One module per group of commands (run, stored results, tools, several machines); `common` holds the app and the one
place that maps errors to exit codes.
"""

from bench.cli import run, stored, tools  # noqa: F401  (each registers its commands on the app)
from bench.cli import fleet  # noqa: F401,I001  (several machines: listed after the commands above)
from bench.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    from bench.events import terminate_as_interrupt

    terminate_as_interrupt()  # SIGTERM at any moment ends like Ctrl-C: one line, exit 130
    app(prog_name="bench")
