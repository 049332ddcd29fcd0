"""What machine a run came from: everything needed to reproduce it or to distrust a comparison."""

from __future__ import annotations

import os
import platform
import sys

import psutil

import bench
from bench.tool_versions import Tool, versions_of

# Fields that make two runs incomparable when they differ (compare warns on these).
COMPARABLE_FIELDS = ("arch", "cpu_model", "cpus_logical", "kernel", "memory_bytes", "python")

# layerbench's own tools and its load generators'; each setup declares the tools it drives (Setup.tools).
OWN_TOOLS = (Tool("numpy", distribution="numpy"), Tool("psutil", distribution="psutil"),
             Tool("uvloop", distribution="uvloop"), Tool("wrk", command=("wrk", "--version")))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
        "versions": {"layerbench": bench.__version__, **versions_of(recorded_tools())},
    }


def recorded_tools() -> list[Tool]:
    """The tools whose versions a run records: layerbench's own, then every registered setup's (all
    of them, not only a run's: two runs of one machine record the same tools, and compare sees them)."""
    from bench.setups import registry  # the setups' declarations only, read when a machine is described

    return [*OWN_TOOLS, *(tool for setup in registry.classes() for tool in setup.tools)]
