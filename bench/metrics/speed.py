"""How fast the machine is right now: a fixed CPU-bound loop (SHA-256 of 1 KiB blocks) on the app's
CPUs, in hashes per second.

On a shared host the same trial can run 15% faster or slower from one run to the next because a
neighbour's load comes and goes, and a guest without steal time cannot see it. Measured beside each
trial, this speed lets the gate compare figures per unit of machine speed (`calibrated.` thresholds),
so a slower machine does not look like a slower program.
"""

from __future__ import annotations

import hashlib
import os
import time

PROBE_S = 0.2
_BLOCK = b"layerbench" * 103  # ~1 KiB: a few microseconds per hash, short enough to check the clock often


def machine_speed(cpus: tuple[int, ...], seconds: float = PROBE_S) -> float:
    """SHA-256 hashes per second of 1 KiB blocks, on `cpus`, over `seconds` (this process's affinity is
    restored after)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        count, began = 0, time.perf_counter()
        while True:
            for _ in range(64):
                hashlib.sha256(_BLOCK).digest()
            count += 64
            elapsed = time.perf_counter() - began
            if elapsed >= seconds:
                return count / elapsed
    finally:
        os.sched_setaffinity(0, before)
