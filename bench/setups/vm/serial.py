"""The guest's serial console: read line by line in a thread, stamped with host time, so start-up
splits into QEMU + guest kernel, init to app, and the forwarded port's first answer."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.images.guest_runtime import MARKER_CGROUP, MARKER_CREATE, MARKER_START
from bench.images.initramfs import MARKER_APP, MARKER_APP_EXITED, MARKER_DISK, MARKER_INIT, MARKER_NETWORK

APP_OWN_MARKER = "layerbench app listening on"  # what bench.app.server prints once it listens
# The container markers appear only when the app runs in a container inside the guest.
_MARKERS = (MARKER_INIT, MARKER_NETWORK, MARKER_APP, MARKER_APP_EXITED, MARKER_DISK, APP_OWN_MARKER, MARKER_CGROUP,
            MARKER_CREATE, MARKER_START)
_MARKER_ALIASES = {APP_OWN_MARKER: MARKER_APP}
SERIAL_TAIL_LINES = 20


@dataclass
class Serial:
    """Reads the guest's serial console (QEMU's stdout) line by line, stamping host time."""

    log_path: Path
    began: float  # perf_counter at QEMU spawn
    marks: dict[str, float] = field(default_factory=dict)  # marker -> perf_counter when seen
    guest_uptime_s: dict[str, float] = field(default_factory=dict)  # marker -> guest uptime it printed
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def pump(self, stream) -> None:
        with open(self.log_path, "w", buffering=1) as log:
            for raw in stream:
                now = time.perf_counter()
                line = raw.decode(errors="replace").rstrip("\r\n")
                log.write(f"[{now - self.began:8.3f}] {line}\n")
                with self.changed:
                    self.lines.append(line)
                    self._mark(line, now)
                    self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def _mark(self, line: str, now: float) -> None:
        for marker in _MARKERS:
            if not line.startswith(marker):
                continue
            # The app's own "listening" line comes before init's stamped copy of it (which costs
            # a fork in the guest): the earlier of the two is the time.
            self.marks.setdefault(_MARKER_ALIASES.get(marker, marker), now)
            uptime = re.search(r"uptime_s=([\d.]+)", line)
            if uptime:
                self.guest_uptime_s[marker] = float(uptime.group(1))

    def wait_for(self, marker: str, deadline_s: float, popen: subprocess.Popen) -> bool:
        """True once marker was printed; False on deadline or when QEMU's console closes."""
        give_up = time.monotonic() + deadline_s
        with self.changed:
            while marker not in self.marks:
                remaining = give_up - time.monotonic()
                if remaining <= 0 or self.closed or popen.poll() is not None:
                    return marker in self.marks
                self.changed.wait(min(remaining, 0.1))
        return True

    def tail(self, count: int = SERIAL_TAIL_LINES) -> list[str]:
        with self.changed:
            return [line for line in self.lines if line.strip()][-count:]
