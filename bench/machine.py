"""What machine a run came from: everything needed to reproduce it or to distrust a comparison."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

import psutil

import bench

# Fields that make two runs incomparable when they differ (compare warns on these).
COMPARABLE_FIELDS = ("arch", "cpu_model", "cpus_logical", "kernel", "memory_bytes", "python")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@functools.cache  # a tool's version does not change while one bench process runs (tests make many runs)
def _version_of(command: tuple[str, ...]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return output.strip().splitlines()[0] if output.strip() else None


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def boot_id() -> str | None:
    """This boot of this kernel's random id (two machines never share one; a reboot makes a new one)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def this_host() -> dict[str, str | None]:
    """What identifies the machine a process runs on: hostname and boot id (see RunRecord.runner_host)."""
    return {"hostname": os.uname().nodename, "boot_id": boot_id()}


def describe() -> dict:
    """Host, kernel, CPU, memory and tool versions, as plain data."""
    uname = os.uname()
    frequency = psutil.cpu_freq()
    return {
        "hostname": uname.nodename,
        "os": platform.platform(),
        "kernel": uname.release,
        "arch": uname.machine,
        "cpu_model": _cpu_model(),
        "cpus_logical": psutil.cpu_count(logical=True),
        "cpus_physical": psutil.cpu_count(logical=False),
        "cpu_mhz_max": frequency.max if frequency else None,
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "python_executable": os.path.realpath(sys.executable),
        "kvm_device": os.path.exists("/dev/kvm"),
        "versions": {
            "layerbench": bench.__version__,
            "numpy": _package("numpy"),
            "psutil": _package("psutil"),
            "docker_sdk": _package("docker"),
            "uvloop": _package("uvloop"),
            "qemu": _version_of(("qemu-system-x86_64", "--version")),
            "wrk": _version_of(("wrk", "--version")),
        },
    }
