"""What a run or a probe writes while it works, named after the process that owns it, so `bench clean`
can tell what a killed runner left (its process is gone) from what is in use:

    $TMPDIR/layerbench-<kind>-<pid>-<random>     the KVM probe's boot log, an image import's tarball, ...
    <cache>/<entry kind>/.tmp-<pid>-<random>     a cache entry being built (a rootfs, an initramfs,
                                                 a fetched kernel), renamed into place once whole

A kill -9 runs no `finally`: such a folder stays. Every one comes from this module (the app's /io
file, which runs unchanged in an image and imports nothing of bench, follows the same naming), so
one sweep (`clean_stale`) covers every kind. A user sweeps their own; root sweeps every one, as a
runner as root hands some to nobody (a host start's folder for nginx's worker). Symbolic links are
unlinked, never followed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

PREFIX = "layerbench-"
# host: a host start's config (nginx, an image); bind: a container's /tmp bind-mounted from the host (scratch: bind)
KINDS = ("host", "kvm-probe", "image", "wrk", "nginx", "io", "bind")
# Stems an older version used for a kind, still swept: host starts were "layerbench-bare-<pid>-...".
FORMER_STEMS = {"layerbench-bare-": "host"}
BUILD_PREFIX = ".tmp-"  # + "<pid>-": next to the cache entry it becomes
# What an older version made without naming its owner is stale once older than any such process lives
# (a KVM probe lasts seconds; a build or a trial, at most hours).
UNOWNED_AGE_S = {"kvm-probe": 3600.0}
UNOWNED_DEFAULT_AGE_S = 24 * 3600.0


def owned_folder(kind: str, label: str = "") -> Path:
    """A new private folder under the temp dir for `kind` (one of KINDS), named after this process."""
    if kind not in KINDS:
        raise ValueError(f"unknown scratch kind {kind!r}; add it to KINDS so bench clean knows it")
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-{label + '-' if label else ''}"))


@contextlib.contextmanager
def owned_temporary(kind: str) -> Iterator[Path]:
    """owned_folder for the block, removed after it (as tempfile.TemporaryDirectory)."""
    folder = owned_folder(kind)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build_folder(parent: Path, label: str = "") -> Path:
    """A private folder in `parent` (a cache folder) for an entry being built, named after this process."""
    return Path(tempfile.mkdtemp(prefix=f"{BUILD_PREFIX}{os.getpid()}-{label + '-' if label else ''}", dir=parent))


@contextlib.contextmanager
def build_temporary(parent: Path, label: str = "") -> Iterator[Path]:
    """build_folder for the block, removed after it."""
    folder = build_folder(parent, label)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def build_file(parent: Path, suffix: str = "") -> tuple[int, str]:
    """(fd, path) of a new private file in `parent` for an entry being written, named after this process."""
    return tempfile.mkstemp(prefix=f"{BUILD_PREFIX}{os.getpid()}-", suffix=suffix, dir=parent)


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 4_194_304  # Linux's ceiling


def _owner_pid(rest: str) -> int | None:
    """The pid at the start of `rest` ("4242-x1y2"), or None: no owner named (an older version's random
    part has no dash; its digest may be all digits, but then is far above any pid)."""
    pid, dash, _ = rest.partition("-")
    return int(pid) if dash and pid.isdigit() and 0 < int(pid) <= _pid_max() else None


def _temp_owner(name: str) -> tuple[str, int | None] | None:
    """(kind, owner pid or None) of a name under the temp dir, or None: not ours."""
    for stem, kind in [*((f"{PREFIX}{kind}-", kind) for kind in KINDS), *FORMER_STEMS.items()]:
        if name.startswith(stem):
            return kind, _owner_pid(name[len(stem):])
    return None


def _stale(path: Path, kind: str, pid: int | None, now: float) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    if info.st_uid != os.geteuid() and os.geteuid() != 0:  # another user's: not ours to judge (nor to remove)
        return False
    if pid is not None:
        return not psutil.pid_exists(pid)
    return now - info.st_mtime > UNOWNED_AGE_S.get(kind, UNOWNED_DEFAULT_AGE_S)


def _listed(pattern_root: Path, *patterns: str) -> list[Path]:
    try:
        return sorted(path for pattern in patterns for path in pattern_root.glob(pattern))
    except OSError:
        return []


def stale(temp_root: Path | None = None, cache: Path | None = None) -> list[Path]:
    """Folders and files under the temp dir and in the cache's entry folders whose owner is gone."""
    from bench.images import cache_root

    temp_root, cache = Path(temp_root or tempfile.gettempdir()), Path(cache or cache_root())
    now, found = time.time(), []
    for path in _listed(temp_root, f"{PREFIX}*"):
        owner = _temp_owner(path.name)
        if owner is not None and _stale(path, *owner, now):
            found.append(path)
    for path in _listed(cache, f"*/{BUILD_PREFIX}*", f"*/*/{BUILD_PREFIX}*"):
        if _stale(path, "build", _owner_pid(path.name[len(BUILD_PREFIX):]), now):
            found.append(path)
    return found


def clean_stale(temp_root: Path | None = None, cache: Path | None = None) -> list[str]:
    """Remove what `stale` finds; one line per thing removed."""
    removed = []
    for path in stale(temp_root, cache):
        what = "link" if path.is_symlink() else "folder" if path.is_dir() else "file"
        if what == "folder":
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        if not os.path.lexists(path):
            removed.append(f"stale {what} {path}")
    return removed
