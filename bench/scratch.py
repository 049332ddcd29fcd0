"""Folders a run or a probe makes under the temp dir, each named after the process that owns it, so
`bench clean` can tell one a killed runner left (its process is gone) from one in use.

    /tmp/layerbench-<kind>-<pid>-<random>     e.g. layerbench-kvm-probe-4242-x1y2z3

A kill -9 runs no `finally`: the KVM probe's boot log, the rootfs tarball of an image import or a
bare start's config stay behind. Every such folder comes from `owned_folder` (or, for the app's own
/io files, which run unchanged in an image and import nothing of bench, from the same naming), so
one sweep (`clean_stale`) covers every kind.
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
KINDS = ("host", "kvm-probe", "image", "wrk", "nginx", "io")  # host: a host start's config (nginx, an image)
# Stems an older version used for a kind, still swept: host starts were "layerbench-bare-<pid>-...".
FORMER_STEMS = {"layerbench-bare-": "host"}
# Folders of a version that did not name the owner yet: stale once older than any such process lives.
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


def _owner(name: str) -> tuple[str, int | None] | None:
    """(kind, owner pid or None for an unowned folder of an older version), or None: not ours."""
    for stem, kind in [*((f"{PREFIX}{kind}-", kind) for kind in KINDS), *FORMER_STEMS.items()]:
        if name.startswith(stem):
            pid, dash, _ = name[len(stem):].partition("-")
            # mkdtemp's random part has no dash: "<digits>-" can only be an owner's pid
            return kind, int(pid) if dash and pid.isdigit() else None
    return None


def _stale(path: Path, kind: str, pid: int | None, now: float) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    if info.st_uid != os.geteuid():  # the temp dir is shared: never another user's
        return False
    if pid is not None:
        return not psutil.pid_exists(pid)
    return now - info.st_mtime > UNOWNED_AGE_S.get(kind, UNOWNED_DEFAULT_AGE_S)


def stale(root: Path | None = None) -> list[Path]:
    """Scratch folders and files under the temp dir (or root) whose owner is gone."""
    root = Path(root or tempfile.gettempdir())
    found, now = [], time.time()
    try:
        entries = sorted(root.glob(f"{PREFIX}*"))
    except OSError:
        return []
    for path in entries:
        owner = _owner(path.name)
        if owner is not None and _stale(path, *owner, now):
            found.append(path)
    return found


def clean_stale(root: Path | None = None) -> list[str]:
    """Remove what `stale` finds; one line per thing removed."""
    removed = []
    for path in stale(root):
        what = "folder" if path.is_dir() and not path.is_symlink() else "file"
        if what == "folder":
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        if not os.path.lexists(path):
            removed.append(f"stale {what} {path}")
    return removed
