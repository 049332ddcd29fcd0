"""Which accelerator a VM gets: KVM if a bounded test boot reaches init, else TCG, and why.

Nested KVM may hang inside the guest kernel (README.md, "What it measured here"), so KVM is never
trusted on the mere presence of /dev/kvm: a test boot must print init's marker within a few
seconds. The answer is remembered (in memory, and on disk for a day) because the probe costs up to its deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from bench.errors import SetupError
from bench.images import cache_root
from bench.images.initramfs import MARKER_INIT
from bench.netutil import free_port
from bench.scratch import owned_temporary
from bench.setups.vm.boot import QEMU, BootPlan
from bench.setups.vm.qemu import spawn, stop

KVM_PROBE_DEADLINE_S = 6.0  # a working KVM reaches init in well under 1 s
PROBE_MEMORY_S = 24 * 3600  # a KVM probe's answer is kept on disk this long (it costs up to 6 s)
_probe_cache: dict[tuple, tuple[str, str]] = {}  # (kernel, initramfs, machine) -> (accel, reason)


def kvm_usable() -> tuple[bool, str]:
    """(True, "") if /dev/kvm can be opened read-write; else (False, why)."""
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm (no hardware virtualization or the kvm module is not loaded)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not read-writable by this user (add it to the kvm group)"
    return True, ""


def choose_accel(requested: str, probe_kvm: Callable[[], tuple[bool, str]]) -> tuple[str, str]:
    """(accel, reason) for a requested accel; probe_kvm() -> (ok, why) does the bounded test boot.

    "tcg" is taken as asked; "kvm" must pass the probe (SetupError otherwise); "auto" prefers
    KVM and falls back to TCG with the probe's reason.
    """
    if requested == "tcg":
        return "tcg", "requested"
    ok, why = probe_kvm()
    if ok:
        return "kvm", "kvm test boot reached init"
    if requested == "kvm":
        raise SetupError(f"accel=kvm requested but KVM is not usable: {why}")
    return "tcg", f"kvm unusable: {why}"


def probe_kvm_boot(plan: BootPlan, deadline_s: float = KVM_PROBE_DEADLINE_S,
                   cpus: tuple[int, ...] = ()) -> tuple[bool, str]:
    """Boot the guest under KVM until init prints its marker, within deadline_s; (ok, why not)."""
    usable, why = kvm_usable()
    if not usable:
        return False, why
    with owned_temporary("kvm-probe") as scratch:  # named after this runner: bench clean removes it once killed
        qemu = spawn(plan, "kvm", free_port(), cpus, scratch / "serial.log")
        try:
            if qemu.serial.wait_for(MARKER_INIT, deadline_s, qemu.popen):
                return True, ""
            if qemu.popen.poll() is not None:
                return False, f"QEMU exited under KVM: {qemu.stderr_tail() or 'no message'}"
            return False, f"test boot under KVM did not reach init within {deadline_s:.0f} s"
        finally:
            stop(qemu, timeout_s=2)


def decide_accel(requested: str, plan: BootPlan, cpus: tuple[int, ...],
                 progress: Callable[[str], None]) -> tuple[str, str]:
    """(accel, reason) for this plan: asked for, remembered from a recent probe, or probed now."""
    key = (str(plan.boot_image), str(plan.initramfs.path), plan.machine)
    if requested == "tcg":
        return "tcg", "requested"
    if key in _probe_cache:
        return _probe_cache[key]
    remembered = _remembered_probe(key)
    if remembered is not None:
        progress(f"KVM probe from the last {PROBE_MEMORY_S // 3600} h: {remembered[0]} ({remembered[1]})")
        answer = remembered
    else:
        progress("probing KVM with a test boot")
        answer = choose_accel(requested, lambda: probe_kvm_boot(plan, cpus=cpus))
        _remember_probe(key, answer)
    _probe_cache[key] = answer
    if requested == "kvm" and answer[0] != "kvm":
        raise SetupError(f"accel=kvm requested but KVM is not usable: {answer[1]}")
    return answer


def _probe_file() -> Path:
    return cache_root() / "kvm-probe.json"


def _probe_key(key: tuple) -> str:
    # The answer depends on the guest images, the host kernel and QEMU: any change probes again.
    qemu = shutil.which(QEMU)
    return "|".join([*key, os.uname().release, qemu or "", str(os.path.getmtime(qemu)) if qemu else ""])


def _remembered_probe(key: tuple) -> tuple[str, str] | None:
    try:
        data = json.loads(_probe_file().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != _probe_key(key) \
            or time.time() - float(data.get("at", 0)) > PROBE_MEMORY_S:
        return None
    return str(data["accel"]), str(data["reason"])


def _remember_probe(key: tuple, answer: tuple[str, str]) -> None:
    with contextlib.suppress(OSError):
        _probe_file().parent.mkdir(parents=True, exist_ok=True)
        _probe_file().write_text(json.dumps({"key": _probe_key(key), "at": time.time(), "accel": answer[0],
                                             "reason": answer[1]}))
