"""Small kernel files read over and over (the sampler's every tick): /proc/PID/stat, /proc/stat, an
interface's sysfs counters. Each is opened once and read again from offset 0, since the kernel writes
it anew on each read: ~2-6 us a read here against ~10-20 us with an open and a close every time.

A descriptor stays bound to what it was opened for: the /proc/PID file of a process that is gone
fails to read instead of reading a later process that got the same pid."""

from __future__ import annotations

import os
from typing import Iterable


class KeptOpen:
    """Files by path, each opened on its first read and kept open until forgotten or closed."""

    def __init__(self) -> None:
        self._descriptors: dict[str, int] = {}

    def read(self, path: str, size: int = 4096) -> bytes:
        """The file's content now (its first `size` bytes). An OSError of the open or the read
        passes through, and the file is forgotten: the next read opens it afresh."""
        descriptor = self._descriptors.get(path)
        if descriptor is None:
            descriptor = self._descriptors[path] = os.open(path, os.O_RDONLY)
        try:
            return os.pread(descriptor, size, 0)
        except OSError:
            self.forget(path)
            raise

    def forget(self, path: str) -> None:
        descriptor = self._descriptors.pop(path, None)
        if descriptor is not None:
            os.close(descriptor)

    def keep_only(self, paths: Iterable[str]) -> None:
        for path in set(self._descriptors) - set(paths):
            self.forget(path)

    def close(self) -> None:
        self.keep_only(())
