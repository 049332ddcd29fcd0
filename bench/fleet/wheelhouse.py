"""layerbench's dependencies as wheels for a host's Python, so the host installs offline.

The versions are the ones installed here (the same numpy, psutil, ... as this machine), fetched
once with `pip download` for the host's interpreter, glibc and CPU, and cached under a key made
of all of these: a second host of the same kind, or a second run, downloads nothing. pip itself
is in the wheelhouse too: the host runs it from its wheel, so it needs only `python3` (no
python3-venv, no pip of its own).

The fleet's playbook asks for a host's wheelhouse on the control with
`python -m bench.fleet.wheelhouse PYTHON GLIBC ARCH`, which prints one JSON line: the key, a tar
of the folder (copied to the host in one piece) and pip's wheel.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.errors import LayerbenchError
from bench.fleet.wheel import DIST_NAME, requirements
from bench.images import cache_root

DONE_MARK = ".complete"
# What a host's probe may answer (it reaches a command line here): "3.11", "2.36", "x86_64".
ANSWER_PATTERN = r"^[0-9A-Za-z_.]{1,32}$"


class WheelhouseError(LayerbenchError):
    """The dependencies could not be fetched for a host's Python."""


@dataclass(frozen=True)
class Interpreter:
    """What a host's wheels must fit."""

    python: str  # "3.11"
    glibc: str  # "2.36"
    arch: str  # "x86_64"

    def platforms(self) -> list[str]:
        """Every manylinux tag this glibc accepts, newest first (pip matches only tags it is given)."""
        minor = int(self.glibc.split(".")[1]) if self.glibc.startswith("2.") else 17
        tags = [f"manylinux_2_{number}_{self.arch}" for number in range(minor, 4, -1)]
        legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
        return tags + [f"{name}_{self.arch}" for name, needs in legacy.items() if minor >= needs]


def pins() -> list[str]:
    """name==version of every distribution installed beside layerbench here (and pip's own)."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() != DIST_NAME:
            found[name.lower()] = f"{name}=={dist.version}"
    return sorted(found.values())


def pip_version() -> str:
    try:
        return metadata.version("pip")
    except metadata.PackageNotFoundError:
        raise WheelhouseError("pip is missing from this Python; it fetches the hosts' wheels "
                              f"(run: {sys.executable} -m ensurepip)") from None


def wheelhouse_for(requires: tuple[str, ...], interpreter: Interpreter) -> Path:
    """A folder of wheels that installs layerbench (these dependencies) and pip, offline."""
    constraints = pins()
    key = hashlib.sha256("\n".join([*requires, *constraints, interpreter.python, interpreter.glibc,
                                    interpreter.arch]).encode()).hexdigest()[:16]
    folder = cache_root() / "fleet" / "wheelhouse" / key
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{key}.lock", "w") as lock:  # hosts of one kind share one download
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / DONE_MARK).exists():
            _download(requires, interpreter, constraints, folder)
        tar = folder.with_suffix(".tar")
        if not tar.is_file():
            with tarfile.open(tar.with_suffix(".tmp"), "w") as archive:
                for wheel in sorted(folder.glob("*.whl")):
                    archive.add(wheel, arcname=wheel.name)
            tar.with_suffix(".tmp").replace(tar)
    return folder


def _download(requires: tuple[str, ...], interpreter: Interpreter, constraints: list[str], folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (temp / "constraints.txt").write_text("\n".join(constraints) + "\n")
        abi = "cp" + interpreter.python.replace(".", "")
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", "--python-version", interpreter.python, "--implementation", "cp",
                   "--abi", abi, "--abi", "abi3", "--abi", "none",
                   *[argument for tag in interpreter.platforms() for argument in ("--platform", tag)],
                   "-c", str(temp / "constraints.txt"), "-d", str(temp), *requires, f"pip=={pip_version()}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            said = [line for line in result.stderr.strip().splitlines() if line.strip()]
            raise WheelhouseError(f"cannot fetch wheels for Python {interpreter.python} ({interpreter.arch}): "
                                  f"{said[-1] if said else 'pip exited ' + str(result.returncode)}")
        (temp / "constraints.txt").unlink()
        (temp / DONE_MARK).write_text("")
        shutil.rmtree(folder, ignore_errors=True)
        temp.rename(folder)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def main(argv: list[str]) -> int:
    """PYTHON GLIBC ARCH -> one JSON line: {key, tar, pip}, or {error} (the playbook fails the host with it)."""
    try:
        if len(argv) != 3 or not all(re.match(ANSWER_PATTERN, part) for part in argv):
            raise WheelhouseError(f"the host's probe gave an unusable answer: {' '.join(argv)[:100]!r}")
        folder = wheelhouse_for(requirements(), Interpreter(*argv))
        found = {"key": folder.name, "tar": str(folder.with_suffix(".tar")),
                 "pip": next(folder.glob("pip-*.whl")).name}
    except (WheelhouseError, OSError, StopIteration) as error:
        found = {"error": str(error) or "pip's wheel is missing from the wheelhouse"}
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
