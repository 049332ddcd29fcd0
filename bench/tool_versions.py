"""The tools whose versions a run records (bench.machine's `versions`), and how each is read.

A setup declares the tools it drives (`Setup.tools`): the container setup the Docker SDK, the VM
setup QEMU; bench.machine names layerbench's own and its load generators'. This module knows no
tool by name, so the record's list of tools grows with the setups, a plugin's too.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Tool:
    """One tool whose version a run records: an installed Python distribution, or a command whose
    first line of output is its version."""

    key: str  # the name the machine record stores its version under
    distribution: str | None = None  # e.g. "numpy": its installed version
    command: tuple[str, ...] = ()  # e.g. ("wrk", "--version"): the first line it prints

    def __post_init__(self):
        if (self.distribution is None) == (not self.command):
            raise ValueError(f"tool {self.key!r}: give a distribution or a command, not both or neither")

    def version(self) -> str | None:
        """The version installed here; None when the tool is not."""
        return _distribution_version(self.distribution) if self.distribution else _command_version(self.command)


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache  # a tool's version does not change while one bench process runs (tests make many runs)
def _command_version(command: tuple[str, ...]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return output.strip().splitlines()[0] if output.strip() else None


def versions_of(tools) -> dict[str, str | None]:
    """Each tool's version by key, in the order given; the first tool of a key wins."""
    found: dict[str, str | None] = {}
    for tool in tools:
        if tool.key not in found:
            found[tool.key] = tool.version()
    return found
