"""The QEMU command line of a VM boot, fixed once per prepared setup (`BootPlan`).

Choices measured on a 2-core Debian 12 host, TCG (see the package docstring for the figures):
microvm with PVH direct boot of the vmlinux, the host's TSC rate for the guest, `-cpu max` for
RDRAND, a capped TCG translation cache, user-mode networking forwarded from 127.0.0.1 only.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.app.command import APP_PORT_IN_GUEST
from bench.images.initramfs import DISK_CMDLINE, Initramfs
from bench.images.kernel import KernelInfo
from bench.netutil import LOOPBACK
from bench.setups.vm.disk import DISK_FILE

QEMU = "qemu-system-x86_64"
TCG_TB_SIZE_MB = 32
# Work the guest kernel does at every boot that this guest never needs (measured under TCG, QEMU's
# CPU time to the first 200): the crypto self-tests of every algorithm registered at boot
# (~0.6 s), and the jitter entropy source's start-up test (~0.3 s; RDRAND and random.trust_cpu
# seed the guest's random numbers at once).
FAST_BOOT_ARGS = ("cryptomgr.notests", "initcall_blacklist=jent_mod_init")


def host_tsc_khz() -> int | None:
    """The host's TSC rate in kHz (under TCG the guest reads the host TSC), or None if unknown."""
    try:
        kernel_log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        kernel_log = ""
    for pattern in (r"tsc: Refined TSC clocksource calibration: ([\d.]+) MHz", r"tsc: Detected ([\d.]+) MHz"):
        found = re.findall(pattern, kernel_log)
        if found:
            return int(float(found[-1]) * 1000)
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class BootPlan:
    """Everything needed to build a QEMU command line, fixed in prepare()."""

    kernel: KernelInfo
    boot_image: Path  # vmlinux (PVH) on microvm, else the bzImage
    machine: str
    initramfs: Initramfs
    memory_mb: int
    vcpus: int
    tsc_khz: int | None
    disk_mb: int = 0  # 0: no disk
    guest_port: int = APP_PORT_IN_GUEST  # the port the app listens on inside the guest

    @property
    def microvm(self) -> bool:
        return self.machine.startswith("microvm")

    def command(self, accel: str, port: int, temp_dir: Path, name: str, address: str = LOOPBACK) -> list[str]:
        """QEMU's argv for one boot: app port forwarded from address:port (127.0.0.1 unless the run is
        split), QMP and pidfile in temp_dir."""
        device = "virtio-net-device" if self.microvm else "virtio-net-pci"
        return [QEMU, "-name", name, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-machine", self.machine, *self._accel_args(accel), "-m", str(self.memory_mb),
                "-smp", str(self.vcpus), "-kernel", str(self.boot_image), "-initrd", str(self.initramfs.path),
                "-append", " ".join(self._kernel_args(accel)),
                "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
                # One host address only (127.0.0.1, or a split run's): the load generator never
                # reaches the guest's private address, and nothing else reaches the forward.
                "-netdev", f"user,id=net0,hostfwd=tcp:{address}:{port}-:{self.guest_port}",
                "-device", f"{device},netdev=net0", *self._disk_args(temp_dir),
                "-qmp", f"unix:{temp_dir / 'qmp.sock'},server=on,wait=off",
                "-pidfile", str(temp_dir / "qemu.pid")]

    def _kernel_args(self, accel: str) -> list[str]:
        append = ["console=ttyS0", "quiet", "panic=-1", "random.trust_cpu=on", *FAST_BOOT_ARGS]
        if self.disk_mb:
            append.append(DISK_CMDLINE)
        if self.microvm:
            append.append("pci=off")
            if accel == "tcg" and self.tsc_khz:
                append += [f"tsc_early_khz={self.tsc_khz}", "tsc=reliable"]
        return append

    @staticmethod
    def _accel_args(accel: str) -> list[str]:
        if accel == "tcg":
            return ["-accel", f"tcg,tb-size={TCG_TB_SIZE_MB}", "-cpu", "max"]
        return ["-accel", "kvm"]  # -cpu host fails on this kind of nested host ("MSR 0x10a")

    def _disk_args(self, temp_dir: Path) -> list[str]:
        if not self.disk_mb:
            return []
        blk = "virtio-blk-device" if self.microvm else "virtio-blk-pci"
        # cache=writeback: the image file goes through the host page cache, as the bare app's and the
        # container's temp files do, and the guest's flushes (ext4 journal commits, fsync) still become
        # fdatasync on the host file. So the difference to them is the layers (guest ext4, virtio-blk,
        # QEMU's block layer), not a switch to O_DIRECT (cache=none).
        return ["-drive", f"file={temp_dir / DISK_FILE},format=raw,if=none,id=d0,cache=writeback",
                "-device", f"{blk},drive=d0"]
