"""VMs a dead run left behind: QEMUs named layerbench-vm-* whose runner is gone, stale runtime dirs."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import psutil

from bench.setups.vm.qemu import NAME_PREFIX, runtime_dir


def _our_qemus():
    for process in psutil.process_iter(["pid", "cmdline", "ppid"]):
        cmdline = process.info.get("cmdline") or []
        if not cmdline or "qemu-system" not in os.path.basename(cmdline[0]):
            continue
        names = [cmdline[i + 1] for i, arg in enumerate(cmdline[:-1]) if arg == "-name"]
        if any(name.startswith(NAME_PREFIX) for name in names):
            yield process, names[0]


def _orphaned(process) -> bool:
    ppid = process.info.get("ppid")
    return ppid in (0, 1) or not psutil.pid_exists(ppid or 0)


def find_leftovers() -> list[str]:
    """QEMUs this tool started whose runner is gone (normally they die with it: PR_SET_PDEATHSIG)."""
    return [f"VM (QEMU pid {process.pid})" for process, _ in _our_qemus() if _orphaned(process)]


def clean_leftovers(include_active: bool = False) -> list[str]:
    """Kill QEMUs this tool started that outlived their runner; remove stale runtime dirs.

    A QEMU whose parent (the runner) still lives is left alone unless include_active.
    Returns one line per thing removed.
    """
    cleaned = []
    for process, name in _our_qemus():
        if not _orphaned(process) and not include_active:
            continue
        with contextlib.suppress(psutil.Error):
            process.kill()
            process.wait(timeout=5)
            cleaned.append(f"VM (QEMU pid {process.pid}, {name})")
    root = runtime_dir()
    if root.is_dir():
        for entry in root.glob(f"{NAME_PREFIX}*"):
            pid = _read_pid(entry / "qemu.pid")
            # A dir without a pidfile may belong to a QEMU starting right now: give it a minute.
            if pid is None and time.time() - entry.stat().st_mtime < 60:
                continue
            if pid is None or not psutil.pid_exists(pid):
                shutil.rmtree(entry, ignore_errors=True)
                cleaned.append(f"stale VM runtime dir {entry}")
    return cleaned


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
