"""A running QEMU process: spawn it pinned, read its console, stop it (QMP, TERM, KILL), and page
out the boot images it keeps mapped."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.images import cache_root
from bench.netutil import LOOPBACK
from bench.setups.procutil import die_with_parent, signals_deferred
from bench.setups.vm.boot import BootPlan
from bench.setups.vm.disk import DISK_FILE, make_disk
from bench.setups.vm.qmp import qmp_quit
from bench.setups.vm.serial import Serial

NAME_PREFIX = "layerbench-vm-"  # QEMU's -name and the runtime dirs: how leftovers are recognized


def runtime_dir() -> Path:
    """Where running VMs keep their QMP socket and pidfile (one temp dir per VM)."""
    return cache_root() / "run"


@dataclass
class Qemu:
    """A running QEMU: the Popen, its temp dir (QMP socket, pidfile, stderr), its console."""

    popen: subprocess.Popen
    temp_dir: Path
    serial: Serial
    reader: threading.Thread
    spawned_at: float = 0.0  # perf_counter when Popen returned: the start of the serial-derived phases
    stopped: bool = False

    def poll(self) -> int | None:  # lets the readiness loop notice a dead QEMU
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


def spawn(plan: BootPlan, accel: str, port: int, cpus: tuple[int, ...], log_path: Path,
          address: str = LOOPBACK) -> Qemu:
    """Start QEMU for one boot of `plan`, pinned to `cpus`, its console read into log_path.

    All or nothing: with Ctrl-C and SIGTERM held back until it returns, and on any error the
    QEMU and its temp dir are removed again (the KVM probe calls it outside a setup's launch)."""
    with signals_deferred():
        runtime_dir().mkdir(parents=True, exist_ok=True)
        temp_dir = Path(tempfile.mkdtemp(prefix=NAME_PREFIX, dir=runtime_dir()))
        popen = None
        try:
            if plan.disk_mb:
                make_disk(temp_dir / DISK_FILE, plan.disk_mb)
            command = plan.command(accel, port, temp_dir, f"{NAME_PREFIX}{os.getpid()}-{port}", address)
            # Under taskset every QEMU thread (vCPU, I/O, RCU) is born pinned; setting the affinity
            # after spawn would race with thread creation.
            taskset = shutil.which("taskset")
            if taskset and cpus:
                command = [taskset, "-c", ",".join(map(str, cpus)), *command]
            serial = Serial(log_path, time.perf_counter())
            with open(temp_dir / "qemu.stderr", "wb") as stderr:
                # New session: a Ctrl-C meant for the runner must not kill QEMU before we quit it cleanly.
                popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                         start_new_session=True, preexec_fn=die_with_parent)
            reader = threading.Thread(target=serial.pump, args=(popen.stdout,), name=f"qemu-serial-{port}",
                                      daemon=True)
            reader.start()
            qemu = Qemu(popen, temp_dir, serial, reader, spawned_at=time.perf_counter())
            if not taskset and cpus:
                _pin_all_threads(popen.pid, cpus)
            return qemu
        except BaseException:
            if popen is not None:
                popen.kill()
                popen.wait()
                if popen.stdout:
                    popen.stdout.close()
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise


def stop(qemu: Qemu, timeout_s: float = 5.0) -> int | None:
    """Quit QEMU through QMP, then SIGTERM, then SIGKILL; remove its temp dir. Idempotent.

    Returns QEMU's exit status if it had already exited before we asked it to stop, else None.
    Ctrl-C and SIGTERM wait until it is done.
    """
    with signals_deferred():
        return _stop(qemu, timeout_s)


def _stop(qemu: Qemu, timeout_s: float) -> int | None:
    if qemu.stopped:
        return None
    died_early = qemu.popen.poll()
    if died_early is None:
        qmp_quit(qemu.temp_dir / "qmp.sock")
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


_SYS_PROCESS_MADVISE = 440  # the same number on every Linux architecture
_MADV_PAGEOUT = 21


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


def page_out_boot_files(pid: int, paths: list[Path]) -> int:
    """Ask the host kernel to page out QEMU's file mappings of the boot images; bytes advised.

    QEMU maps the -kernel ELF and the -initrd file and keeps them mapped only to replay them on a
    guest reset; once the guest runs they are clean page cache counted in QEMU's RSS (~50-80 MB).
    process_madvise(MADV_PAGEOUT) drops the pages only this QEMU maps (a reset would read them
    back from the file). 0 when the kernel (< 5.10) or the permissions do not allow it.
    """
    ranges = _mapped_ranges(pid, {os.path.realpath(path) for path in paths})
    if not ranges:
        return 0
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return 0
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


def _mapped_ranges(pid: int, wanted: set[str]) -> list[tuple[int, int]]:
    """(start, length) of every mapping of the files in `wanted` in the process's address space."""
    ranges = []
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].strip() in wanted:
                    start, end = (int(value, 16) for value in parts[0].split("-"))
                    ranges.append((start, end - start))
    except OSError:
        return []
    return ranges


def _pin_all_threads(pid: int, cpus: tuple[int, ...]) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)
