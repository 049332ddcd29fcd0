"""The VM's optional virtio-blk disk: a sparse raw file holding an ext4 made on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.errors import SetupError

DISK_MB = 256  # the disk's size (sparse: ~8 MB of it is written by mkfs)
DISK_FILE = "disk.raw"  # in the VM's temp dir, removed with it


def find_mkfs_ext4() -> str | None:
    return shutil.which("mkfs.ext4", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def make_disk(path: Path, size_mb: int = DISK_MB) -> None:
    """A sparse raw image of size_mb holding an empty ext4 (SetupError in one line if mkfs fails)."""
    mkfs = find_mkfs_ext4()
    if mkfs is None:
        raise SetupError("mkfs.ext4 is not installed (apt-get install e2fsprogs); the VM's disk needs it")
    with open(path, "wb") as image:
        image.truncate(size_mb * 1024 * 1024)
    result = subprocess.run([mkfs, "-q", "-F", str(path)], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        words = " ".join((result.stderr or result.stdout).split()) or f"exit status {result.returncode}"
        raise SetupError(f"mkfs.ext4 failed on the VM's disk: {words}")
