"""The VM setup: the app as PID 1's child in a QEMU guest booted straight from an initramfs.

    app -> guest kernel -> virtual devices (QEMU) -> hypervisor (KVM or TCG) -> host kernel

No disk image: QEMU boots the guest kernel with `-initrd` holding the shared rootfs, busybox
and an init script (bench.images.initramfs). Choices measured on a 2-core Debian 12 host, TCG:
- `-machine microvm` booting the uncompressed vmlinux via PVH: ~0.75 s faster than a bzImage
  and ~0.4-0.6 s faster than pc/q35 (no PCI enumeration, no legacy firmware).
- microvm has no HPET/ACPI PM timer, so under host load the guest's TSC calibration against
  the PIT fails and the kernel hangs; the host's TSC rate is passed with `tsc_early_khz`
  (under TCG the guest reads the host TSC).
- `-cpu max` under TCG gives the guest RDRAND: its entropy pool is ready at once, so the
  app's first getrandom does not spin ~1 s in the kernel's jitter-entropy loop.
- `tb-size=32` caps TCG's translation cache (default up to 1 GiB, grows with use): ~50 MB RSS.
- An uncompressed initramfs avoids ~0.45 s of inflating in the guest at the price of ~45 MB
  more QEMU RSS (QEMU keeps a copy of the initrd).
Measured later (same host, shared and noisy: boots interleaved A/B, medians of 4-6, compared on
QEMU's CPU time to the first 200, which the neighbours' load disturbs far less than wall time):
- A sourceless stdlib in the rootfs (legacy pycs, no .py): rootfs 39.7 -> 30.6 MB, initramfs
  41.8 -> 33.0 MB, QEMU RSS 310 -> 283 MB, CPU to first 200 3.88 -> 3.66 s.
- Compressing that initramfs (guest inflates, QEMU maps the smaller file, the guest's copy
  shrinks): lz4 -l -9 14.4 MB, RSS 256 MB, CPU 3.81 s; gzip 12.5 MB, 250 MB, 4.04 s; zstd -19
  10.0 MB, 248 MB, 4.05 s; plain 283 MB, 3.66 s. lz4 is the default (initramfs module).
- QEMU maps -kernel (vmlinux: ~48 MB resident) and -initrd and keeps them only to replay a
  reset. Paging them out after the first 200 (process_madvise(MADV_PAGEOUT); a reset reads them
  back) gave RSS 256 -> 193 MB with lz4 (283 -> 203 MB plain), peak RSS unchanged. It is an
  option (release_boot_files), off by default: the copy is a real cost of this boot method.
- Guest memory does not drive RSS: -m 160 and -m 256 both gave 283 MB (the guest touches
  ~130 MB either way), so 256 stays; 144 no longer unpacks a plain 33 MB initramfs.
- tb-size=16: RSS -18 MB but CPU to first 200 +0.8 s (init_to_app 1.2 -> 2.0 s, retranslation).
- virtio-balloon free page reporting (module loaded once the app listens) gave back ~12 MB of
  the guest's freed initrd on top of lz4; not adopted: the kernel cache lacks virtio_balloon.ko.
- The guest sees an AMD CPU under TCG (`-cpu max`): no page table isolation to switch off.
KVM is probed with a bounded test boot (nested KVM may hang in the guest kernel) and TCG
is the fallback; every result records which accel ran and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil
from pydantic import Field

from bench.images import initramfs as initramfs_module
from bench.images.kernel import KernelError, KernelInfo, cache_root, find_kernel, kernel_status, pvh_vmlinux
from bench.netutil import free_port, port_in_use
from bench.setups import register
from bench.setups.base import (APP_PORT_IN_GUEST, ROLE_HYPERVISOR, Instance, Options, RoleProcess, Setup,
                               SetupError, die_with_parent)

QEMU = "qemu-system-x86_64"
NAME_PREFIX = "layerbench-vm-"  # QEMU's -name: how clean_leftovers recognizes our VMs
DEFAULT_MEMORY_MB = 256
TCG_TB_SIZE_MB = 32
KVM_PROBE_DEADLINE_S = 6.0  # a working KVM reaches init in well under 1 s
SERIAL_TAIL_LINES = 20

_probe_cache: dict[tuple, tuple[str, str]] = {}  # (kernel, initramfs, machine) -> (accel, reason)
PROBE_MEMORY_S = 24 * 3600  # a KVM probe's answer is kept on disk this long (it costs up to 6 s)


def _probe_file() -> Path:
    return cache_root() / "kvm-probe.json"


def _probe_key(key: tuple) -> str:
    # The answer depends on the guest images, the host kernel and QEMU: any change probes again.
    return "|".join([*key, os.uname().release, shutil.which(QEMU) or "", str(os.path.getmtime(shutil.which(QEMU)))
                     if shutil.which(QEMU) else ""])


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


def runtime_dir() -> Path:
    """Where running VMs keep their QMP socket and pidfile (one temp dir per VM)."""
    return cache_root() / "run"


class VMOptions(Options):
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    # The kernel (~51 MB loaded), the initramfs and its unpacked copy (~31 MB) share guest RAM: an
    # uncompressed one boots at 160 MB, not at 144 (an lz4 one boots at 128).
    memory_mb: int = Field(DEFAULT_MEMORY_MB, ge=160, le=16384)
    kernel: str | None = None  # path of a bzImage; default: the cached Debian cloud kernel
    vcpus: int = Field(1, ge=1, le=64)
    # Off by default: QEMU's kept copy of the kernel and initrd is part of what this way of
    # booting costs, and RSS should show it. On, those pages are dropped after the first 200.
    release_boot_files: bool = False
    # A virtio-blk disk (sparse raw file, ext4 made on the host) mounted at the guest's /tmp, so
    # the app's temp files go through guest ext4 -> virtio-blk -> QEMU's block layer -> a host
    # file. Off: /tmp is in the initramfs's RAM-backed root.
    disk: bool = False


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


# ---- the QEMU process and its serial console ---------------------------------------------

APP_OWN_MARKER = "layerbench app listening on"  # what bench.app.server prints once it listens
_MARKERS = (initramfs_module.MARKER_INIT, initramfs_module.MARKER_NETWORK, initramfs_module.MARKER_APP,
            initramfs_module.MARKER_APP_EXITED, initramfs_module.MARKER_DISK, APP_OWN_MARKER)
_MARKER_ALIASES = {APP_OWN_MARKER: initramfs_module.MARKER_APP}


@dataclass
class _Serial:
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
                    for marker in _MARKERS:
                        if not line.startswith(marker):
                            continue
                        # The app's own "listening" line comes before init's stamped copy of it
                        # (which costs a fork in the guest): the earlier of the two is the time.
                        self.marks.setdefault(_MARKER_ALIASES.get(marker, marker), now)
                        uptime = re.search(r"uptime_s=([\d.]+)", line)
                        if uptime:
                            self.guest_uptime_s[marker] = float(uptime.group(1))
                    self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

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


@dataclass
class _Qemu:
    """A running QEMU: the Popen, its temp dir (QMP socket, pidfile, stderr), its console."""

    popen: subprocess.Popen
    temp_dir: Path
    serial: _Serial
    reader: threading.Thread
    spawned_at: float = 0.0  # perf_counter when Popen returned: the start of the serial-derived phases
    stopped: bool = False

    def poll(self) -> int | None:  # lets the base class's readiness loop notice a dead QEMU
        return self.popen.poll()

    @property
    def stderr_path(self) -> Path:
        return self.temp_dir / "qemu.stderr"

    def stderr_tail(self) -> str:
        try:
            lines = [line for line in self.stderr_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""


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
class _BootPlan:
    """Everything needed to build a QEMU command line, fixed in prepare()."""

    kernel: KernelInfo
    boot_image: Path  # vmlinux (PVH) on microvm, else the bzImage
    machine: str
    initramfs: initramfs_module.Initramfs
    memory_mb: int
    vcpus: int
    tsc_khz: int | None
    disk_mb: int = 0  # 0: no disk

    def command(self, accel: str, port: int, temp_dir: Path, name: str) -> list[str]:
        append = ["console=ttyS0", "quiet", "panic=-1", "random.trust_cpu=on"]
        disk_args: list[str] = []
        if self.disk_mb:
            append += [initramfs_module.DISK_CMDLINE]
            blk = "virtio-blk-device" if self.machine.startswith("microvm") else "virtio-blk-pci"
            # cache=writeback: the image file goes through the host page cache, as the bare app's and
            # the container's temp files do, and the guest's flushes (ext4 journal commits, fsync)
            # still become fdatasync on the host file. So the difference to them is the layers
            # (guest ext4, virtio-blk, QEMU's block layer), not a switch to O_DIRECT (cache=none).
            disk_args = ["-drive", f"file={temp_dir / DISK_FILE},format=raw,if=none,id=d0,cache=writeback",
                         "-device", f"{blk},drive=d0"]
        if self.machine.startswith("microvm"):
            append += ["pci=off"]
            if accel == "tcg" and self.tsc_khz:
                append += [f"tsc_early_khz={self.tsc_khz}", "tsc=reliable"]
        accel_args = ["-accel", f"tcg,tb-size={TCG_TB_SIZE_MB}", "-cpu", "max"] if accel == "tcg" \
            else ["-accel", "kvm"]  # -cpu host fails on this kind of nested host ("MSR 0x10a")
        device = "virtio-net-device" if self.machine.startswith("microvm") else "virtio-net-pci"
        return [QEMU, "-name", name, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-machine", self.machine, *accel_args, "-m", str(self.memory_mb), "-smp", str(self.vcpus),
                "-kernel", str(self.boot_image), "-initrd", str(self.initramfs.path), "-append", " ".join(append),
                "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
                # 127.0.0.1 only: the load generator never reaches the guest's private address.
                "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:{APP_PORT_IN_GUEST}",
                "-device", f"{device},netdev=net0", *disk_args,
                "-qmp", f"unix:{temp_dir / 'qmp.sock'},server=on,wait=off",
                "-pidfile", str(temp_dir / "qemu.pid")]


def _spawn(plan: _BootPlan, accel: str, port: int, cpus: tuple[int, ...], log_path: Path) -> _Qemu:
    runtime_dir().mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=NAME_PREFIX, dir=runtime_dir()))
    if plan.disk_mb:
        try:
            make_disk(temp_dir / DISK_FILE, plan.disk_mb)
        except BaseException:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
    command = plan.command(accel, port, temp_dir, f"{NAME_PREFIX}{os.getpid()}-{port}")
    # Under taskset every QEMU thread (vCPU, I/O, RCU) is born pinned; setting the affinity
    # after spawn would race with thread creation.
    taskset = shutil.which("taskset")
    if taskset and cpus:
        command = [taskset, "-c", ",".join(map(str, cpus)), *command]
    began = time.perf_counter()
    serial = _Serial(log_path, began)
    with open(temp_dir / "qemu.stderr", "wb") as stderr:
        # New session: a Ctrl-C meant for the runner must not kill QEMU before we quit it cleanly.
        popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                 start_new_session=True, preexec_fn=die_with_parent)
    reader = threading.Thread(target=serial.pump, args=(popen.stdout,), name=f"qemu-serial-{port}", daemon=True)
    reader.start()
    qemu = _Qemu(popen, temp_dir, serial, reader, spawned_at=time.perf_counter())
    if not taskset and cpus:
        _pin_all_threads(popen.pid, cpus)
    return qemu


_SYS_PROCESS_MADVISE = 440  # the same number on every Linux architecture
_MADV_PAGEOUT = 21


def page_out_boot_files(pid: int, paths: list[Path]) -> int:
    """Ask the host kernel to page out QEMU's file mappings of the boot images; bytes advised.

    QEMU maps the -kernel ELF and the -initrd file and keeps them mapped only to replay them on a
    guest reset; once the guest runs they are clean page cache counted in QEMU's RSS (~50-80 MB).
    process_madvise(MADV_PAGEOUT) drops the pages only this QEMU maps (a reset would read them
    back from the file). 0 when the kernel (< 5.10) or the permissions do not allow it.
    """
    import ctypes

    wanted = {os.path.realpath(path) for path in paths}
    ranges: list[tuple[int, int]] = []
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].strip() in wanted:
                    start, end = (int(value, 16) for value in parts[0].split("-"))
                    ranges.append((start, end - start))
        if not ranges:
            return 0
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return 0

    class _Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]

    vector = (_Iovec * len(ranges))(*(_Iovec(start, length) for start, length in ranges))
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
        syscall.restype = ctypes.c_long
        advised = syscall(_SYS_PROCESS_MADVISE, pidfd, vector, ctypes.c_size_t(len(ranges)), _MADV_PAGEOUT,
                          ctypes.c_uint(0))
    except (OSError, AttributeError):
        advised = -1
    finally:
        os.close(pidfd)
    return max(0, advised)


def _pin_all_threads(pid: int, cpus: tuple[int, ...]) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


def _stop(qemu: _Qemu, timeout_s: float = 5.0) -> int | None:
    """Quit QEMU through QMP, then SIGTERM, then SIGKILL; remove its temp dir. Idempotent.

    Returns QEMU's exit status if it had already exited before we asked it to stop, else None.
    """
    if qemu.stopped:
        return None
    died_early = qemu.popen.poll()
    if died_early is None:
        _qmp_quit(qemu.temp_dir / "qmp.sock")
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    qemu.popen.send_signal(sig)
            try:
                qemu.popen.wait(timeout=timeout_s)
                break
            except subprocess.TimeoutExpired:
                continue
    qemu.reader.join(timeout=2)
    if qemu.popen.stdout:
        qemu.popen.stdout.close()
    shutil.rmtree(qemu.temp_dir, ignore_errors=True)
    qemu.stopped = True
    return died_early


def _qmp_quit(socket_path: Path) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            client.connect(str(socket_path))
            reader = client.makefile("rb")
            reader.readline()  # greeting
            for command in ("qmp_capabilities", "quit"):
                client.sendall(json.dumps({"execute": command}).encode() + b"\n")
                reader.readline()
    except OSError:
        pass  # the signals in _stop() take over


# ---- accel -------------------------------------------------------------------------------


def kvm_usable() -> tuple[bool, str]:
    """(True, "") if /dev/kvm can be opened read-write; else (False, why)."""
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm (no hardware virtualization or the kvm module is not loaded)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not read-writable by this user (add it to the kvm group)"
    return True, ""


def choose_accel(requested: str, probe_kvm) -> tuple[str, str]:
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


def probe_kvm_boot(plan: _BootPlan, deadline_s: float = KVM_PROBE_DEADLINE_S,
                   cpus: tuple[int, ...] = ()) -> tuple[bool, str]:
    """Boot the guest under KVM until init prints its marker, within deadline_s; (ok, why not)."""
    usable, why = kvm_usable()
    if not usable:
        return False, why
    with tempfile.TemporaryDirectory(prefix="layerbench-kvm-probe-") as scratch:
        qemu = _spawn(plan, "kvm", free_port(), cpus, Path(scratch) / "serial.log")
        try:
            reached = qemu.serial.wait_for(initramfs_module.MARKER_INIT, deadline_s, qemu.popen)
            if reached:
                return True, ""
            if qemu.popen.poll() is not None:
                return False, f"QEMU exited under KVM: {qemu.stderr_tail() or 'no message'}"
            return False, f"test boot under KVM did not reach init within {deadline_s:.0f} s"
        finally:
            _stop(qemu, timeout_s=2)


# ---- the setup -----------------------------------------------------------------------------


@register
class VMSetup(Setup):
    name = "vm"
    layer = ("the app in a QEMU virtual machine: app -> guest kernel -> virtual devices (QEMU) "
             "-> hypervisor (KVM or TCG) -> host kernel")
    narration = ("the same app inside a virtual machine: it runs on a guest kernel of its own, and QEMU "
                 "emulates its network card. Without KVM, QEMU also translates every CPU instruction in "
                 "software (TCG): expect a large factor, and read it as emulation, not virtualization.")
    Options = VMOptions
    # TCG boots in ~4 s on an idle 2-core host; a loaded one can take several times that.
    # A QEMU that exits fails at once (the base class polls the handle).
    ready_deadline_s = 60.0

    _plan: _BootPlan | None = None
    _accel: str | None = None
    _accel_reason: str = ""

    @classmethod
    def check(cls) -> str | None:
        if not shutil.which(QEMU):
            return f"{QEMU} is not installed (apt-get install qemu-system-x86, or run scripts/host-setup.sh)"
        if not initramfs_module.find_busybox():
            return "busybox is not installed (apt-get install busybox-static, or run scripts/host-setup.sh)"
        status = kernel_status()
        return status if status.startswith("no guest kernel") and "will be fetched" not in status else None

    @classmethod
    def doctor_lines(cls) -> list[str]:
        kvm = ("/dev/kvm present: probed with a bounded test boot on first use, TCG if the guest does not reach init"
               if os.path.exists("/dev/kvm") else "no /dev/kvm: the VM runs under TCG (software emulation)")
        return [kernel_status(), kvm]

    def prepare(self) -> None:
        """Find/fetch the kernel, build the rootfs and initramfs, then decide the accel (may probe KVM)."""
        if self._plan is not None:
            return
        from bench.images.rootfs import build_rootfs

        options: VMOptions = self.options  # type: ignore[assignment]
        try:
            kernel = find_kernel(options.kernel, progress=self.progress)
        except KernelError as error:
            raise SetupError(str(error)) from None
        vmlinux = pvh_vmlinux(kernel)
        machine = "microvm" if vmlinux else "q35"  # microvm's firmware-less boot wants the PVH ELF
        rootfs = build_rootfs(progress=self.progress)
        image = initramfs_module.build_initramfs(rootfs, kernel, port=APP_PORT_IN_GUEST, progress=self.progress)
        if kernel.modules_dir is None or not image.modules:
            self.progress(f"warning: no virtio_net module found for kernel {kernel.version}; "
                          "the guest network works only if the driver is built in")
        if options.disk:
            if find_mkfs_ext4() is None:
                raise SetupError("mkfs.ext4 is not installed (apt-get install e2fsprogs); the VM's disk needs it")
            config = kernel.path.parent / "config"
            built_in = config.is_file() and "CONFIG_VIRTIO_BLK=y" in config.read_text().split()
            if "virtio_blk" not in image.modules and not built_in:
                raise SetupError(f"no virtio_blk module for guest kernel {kernel.version}; the VM's disk needs it "
                                 f"(remove {kernel.path.parent} so layerbench fetches the kernel again)")
        self._plan = _BootPlan(kernel, vmlinux or kernel.path, machine, image, options.memory_mb, options.vcpus,
                               host_tsc_khz(), DISK_MB if options.disk else 0)
        key = (str(self._plan.boot_image), str(image.path), machine)
        if options.accel == "tcg":
            self._accel, self._accel_reason = "tcg", "requested"
        elif key in _probe_cache:
            self._accel, self._accel_reason = _probe_cache[key]
        elif (remembered := _remembered_probe(key)) is not None:
            self._accel, self._accel_reason = remembered
            self.progress(f"KVM probe from the last {PROBE_MEMORY_S // 3600} h: {self._accel} ({self._accel_reason})")
        else:
            self.progress("probing KVM with a test boot")
            self._accel, self._accel_reason = choose_accel(
                options.accel, lambda: probe_kvm_boot(self._plan, cpus=self.pinning.app_cpus))  # type: ignore[arg-type]
            _remember_probe(key, (self._accel, self._accel_reason))
        _probe_cache[key] = (self._accel, self._accel_reason)
        if options.accel == "kvm" and self._accel != "kvm":
            raise SetupError(f"accel=kvm requested but KVM is not usable: {self._accel_reason}")

    def variant(self) -> str:
        if self._accel is None:
            self.prepare()
        options: VMOptions = self.options  # type: ignore[assignment]
        name = self._accel or "tcg"
        if options.memory_mb != DEFAULT_MEMORY_MB:
            name += f",mem={options.memory_mb}"
        if options.vcpus != 1:
            name += f",vcpus={options.vcpus}"
        if options.release_boot_files:
            name += ",release-boot-files"
        if options.disk:
            name += ",disk"
        return name

    def _launch(self) -> Instance:
        self.prepare()
        plan, accel = self._plan, self._accel
        assert plan is not None and accel is not None
        port = free_port()
        if port_in_use(port):
            raise SetupError(f"port {port} on 127.0.0.1 is taken; retry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / f"vm-{port}-serial.log"
        began = time.perf_counter()
        qemu = _spawn(plan, accel, port, self.pinning.app_cpus, log_path)
        launch_s = time.perf_counter() - began
        # No waiting here to see whether QEMU survives: the readiness loop notices an exit at
        # once (handle.poll), and _terminate turns it into a one-line error with QEMU's reason
        # (port taken by a race, unbootable kernel, ...).
        try:
            hypervisor = psutil.Process(qemu.popen.pid)
        except psutil.Error:
            hypervisor = None

        def processes() -> list[RoleProcess]:
            # poll() reaps an exited QEMU; psutil would call its zombie "running" and the
            # readiness loop would wait out its whole deadline instead of failing at once.
            if hypervisor is None or qemu.popen.poll() is not None:
                return []
            return [RoleProcess(ROLE_HYPERVISOR, hypervisor)]

        facts = {
            "accel": accel, "accel_reason": self._accel_reason, "kernel_version": plan.kernel.version,
            "kernel_source": plan.kernel.source, "boot_image": str(plan.boot_image), "machine": plan.machine,
            "initramfs_bytes": plan.initramfs.size_bytes, "initramfs_compression": plan.initramfs.compression,
            "guest_modules": list(plan.initramfs.modules), "memory_mb": plan.memory_mb, "vcpus": plan.vcpus,
            "tcg_tb_size_mb": TCG_TB_SIZE_MB if accel == "tcg" else None, "tsc_khz": plan.tsc_khz,
            "disk_mb": plan.disk_mb, "disk_cache": "writeback" if plan.disk_mb else None,
            "serial_log": str(log_path), "qemu_pid": qemu.popen.pid, "stats_url": f"http://127.0.0.1:{port}/stats",
        }
        return Instance(port=port, processes=processes, phases={"launch_s": launch_s}, facts=facts, handle=qemu)

    def _before_polling(self, instance: Instance, deadline_s: float) -> None:
        """Wait for the app's line on the serial console before /health is polled.

        Until the guest listens, a connection to QEMU's port forward is accepted on the host and
        then hangs until the poll's HTTP timeout, which would quantize the first 200.
        """
        qemu: _Qemu = instance.handle  # type: ignore[assignment]
        qemu.serial.wait_for(initramfs_module.MARKER_APP, deadline_s, qemu.popen)

    def _after_ready(self, instance: Instance) -> None:
        """Split first_200_s with the console markers into kernel_to_init_s (QEMU + guest kernel, up
        to /init), init_to_app_s (modules, network, interpreter, imports) and first_200_s (the
        rest: the forwarded port answering); with launch_s they sum to launch -> first 200."""
        _split_phases(instance)
        if self.options.release_boot_files:  # type: ignore[attr-defined]
            qemu: _Qemu = instance.handle  # type: ignore[assignment]
            plan = self._plan
            assert plan is not None
            instance.facts["boot_files_paged_out_bytes"] = page_out_boot_files(
                qemu.popen.pid, [plan.boot_image, plan.initramfs.path])

    def _terminate(self, instance: Instance) -> None:
        qemu: _Qemu = instance.handle  # type: ignore[assignment]
        if qemu is None or qemu.stopped:
            return
        stderr_tail = qemu.stderr_tail()  # read before _stop removes the temp dir
        died_early = _stop(qemu)
        if died_early is not None:
            how = f"killed by signal {-died_early}" if died_early < 0 else f"exit status {died_early}"
            if "host forwarding" in stderr_tail:
                raise SetupError(f"QEMU could not forward 127.0.0.1:{instance.port} (port taken?): {stderr_tail}")
            words = stderr_tail or "guest console: " + (" | ".join(qemu.serial.tail(3)) or "(nothing printed)")
            raise SetupError(f"QEMU exited before it was stopped ({how}): {words}")

    def diagnose(self, instance: Instance) -> str:
        qemu: _Qemu = instance.handle  # type: ignore[assignment]
        if qemu is None:
            return ""
        words = []
        if qemu.popen.poll() is not None and qemu.stderr_tail():
            words.append(f"QEMU: {qemu.stderr_tail()}")
        tail = qemu.serial.tail(SERIAL_TAIL_LINES)
        words.append("serial console: " + (" | ".join(tail) if tail else "(nothing printed)"))
        return "; ".join(words)


def _split_phases(instance: Instance) -> None:
    qemu: _Qemu = instance.handle  # type: ignore[assignment]
    # The console and the network are separate paths out of QEMU: give the marker a moment.
    qemu.serial.wait_for(initramfs_module.MARKER_APP, 1.0, qemu.popen)
    marks = qemu.serial.marks
    first_200_s = instance.phases.pop("first_200_s")
    launched = qemu.spawned_at
    init_at = marks.get(initramfs_module.MARKER_INIT)
    app_at = marks.get(initramfs_module.MARKER_APP)
    if init_at is None or app_at is None:  # markers missing (odd init): keep the unsplit figure
        instance.phases["first_200_s"] = first_200_s
        return
    kernel_to_init_s = max(0.0, init_at - launched)
    init_to_app_s = max(0.0, app_at - init_at)
    instance.phases["kernel_to_init_s"] = kernel_to_init_s
    instance.phases["init_to_app_s"] = init_to_app_s
    instance.phases["first_200_s"] = max(0.0, first_200_s - kernel_to_init_s - init_to_app_s)
    uptimes = qemu.serial.guest_uptime_s
    instance.facts["guest_uptime_at_init_s"] = uptimes.get(initramfs_module.MARKER_INIT)
    instance.facts["guest_uptime_at_app_s"] = uptimes.get(initramfs_module.MARKER_APP)


# ---- leftovers -----------------------------------------------------------------------------


def find_leftovers() -> list[str]:
    """QEMUs this tool started whose runner is gone (normally they die with it: PR_SET_PDEATHSIG)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "ppid"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline and "qemu-system" in os.path.basename(cmdline[0]) and \
                any(arg.startswith(NAME_PREFIX) for arg in cmdline) and process.info.get("ppid") in (0, 1):
            found.append(f"VM (QEMU pid {process.pid})")
    return found


def clean_leftovers(include_active: bool = False) -> list[str]:
    """Kill QEMUs this tool started that outlived their runner; remove stale runtime dirs.

    A QEMU whose parent (the runner) still lives is left alone unless include_active.
    Returns one line per thing cleaned.
    """
    cleaned = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "ppid"]):
        cmdline = process.info.get("cmdline") or []
        if not cmdline or "qemu-system" not in os.path.basename(cmdline[0]):
            continue
        names = [cmdline[i + 1] for i, arg in enumerate(cmdline[:-1]) if arg == "-name"]
        if not any(name.startswith(NAME_PREFIX) for name in names):
            continue
        orphan = process.info.get("ppid") in (0, 1) or not psutil.pid_exists(process.info.get("ppid") or 0)
        if not orphan and not include_active:
            continue
        with contextlib.suppress(psutil.Error):
            process.kill()
            process.wait(timeout=5)
            cleaned.append(f"killed leftover QEMU pid {process.pid} ({names[0]})")
    root = runtime_dir()
    if root.is_dir():
        for entry in root.glob(f"{NAME_PREFIX}*"):
            pid = _read_pid(entry / "qemu.pid")
            # A dir without a pidfile may belong to a QEMU starting right now: give it a minute.
            if pid is None and time.time() - entry.stat().st_mtime < 60:
                continue
            if pid is None or not psutil.pid_exists(pid):
                shutil.rmtree(entry, ignore_errors=True)
                cleaned.append(f"removed stale VM runtime dir {entry}")
    return cleaned


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
