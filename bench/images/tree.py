"""A root filesystem assembled from host files and generated ones, cached by a digest of its content.

The python app's rootfs has its own builder (bench.images.rootfs: it trims and compiles a stdlib);
other apps describe their tree as a `TreePlan` (host files, generated files, symlinks, folders)
and get it built once under `$XDG_CACHE_HOME/layerbench/<kind>/<digest>`, in a temp dir renamed
into place, so a tree is either complete or absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.images import cache_root
from bench.scratch import build_folder


@dataclass
class TreePlan:
    """What goes where in a tree; paths are absolute inside the tree."""

    version: str  # bump when the layout rules change: the digest changes and a new tree builds
    files: dict[str, Path] = field(default_factory=dict)  # path -> host file (copied, mode kept)
    generated: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (content, mode)
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target
    folders: dict[str, int] = field(default_factory=dict)  # path -> mode (e.g. /tmp 1777)

    def digest(self) -> str:
        """sha256 of every input: paths, modes and content."""
        hasher = hashlib.sha256(f"layerbench-tree {self.version}\n".encode())
        for dest in sorted(self.files):
            source = self.files[dest]
            with open(source, "rb") as handle:
                content = hashlib.file_digest(handle, "sha256").hexdigest()
            hasher.update(f"file {dest} {_mode_of(source):o} {content}\n".encode())
        for dest in sorted(self.generated):
            data, mode = self.generated[dest]
            hasher.update(f"gen {dest} {mode:o} {hashlib.sha256(data).hexdigest()}\n".encode())
        for dest in sorted(self.symlinks):
            hasher.update(f"link {dest} -> {self.symlinks[dest]}\n".encode())
        for dest in sorted(self.folders):
            hasher.update(f"dir {dest} {self.folders[dest]:o}\n".encode())
        return hasher.hexdigest()


@dataclass(frozen=True)
class Tree:
    path: Path
    digest: str
    size_bytes: int


def _mode_of(source: Path) -> int:
    return 0o755 if os.access(source, os.X_OK) else 0o644


def build_tree(kind: str, plan: TreePlan, cache_dir: Path | None = None,
               progress: Callable[[str], None] = lambda m: None) -> Tree:
    """The tree for `plan`: from the cache, or written and cached."""
    digest = plan.digest()
    final = (Path(cache_dir) if cache_dir is not None else cache_root()) / kind / digest
    if final.is_dir():
        progress(f"{kind} {digest[:12]} already built")
        return Tree(final, digest, tree_bytes(final))
    progress(f"building {kind} {digest[:12]} ({len(plan.files) + len(plan.generated)} files)")
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = build_folder(final.parent, digest[:12])  # named after this runner: bench clean removes it once killed
    try:
        _populate(temp, plan)
        try:
            os.rename(temp, final)
        except OSError:
            if not final.is_dir():  # another build won the race; its tree is as good
                raise
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return Tree(final, digest, tree_bytes(final))


def _populate(root: Path, plan: TreePlan) -> None:
    def target_of(dest: str) -> Path:
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    for dest, source in plan.files.items():
        target = target_of(dest)
        shutil.copyfile(source, target)
        os.chmod(target, _mode_of(source))
    for dest, (data, mode) in plan.generated.items():
        target = target_of(dest)
        target.write_bytes(data)
        os.chmod(target, mode)
    for dest, link in plan.symlinks.items():
        os.symlink(link, target_of(dest))
    # mkdtemp makes the root 0700 and a strict umask would hide the rest from an unprivileged app.
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
    for dest, mode in plan.folders.items():
        folder = root / dest.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, mode)


def tree_bytes(root: Path) -> int:
    """Sum of the regular files' sizes under root."""
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
