"""A psutil sampler on a timer, in its own thread, wrapping exactly the window it measures.

Each tick records, for every host process the setup costs, cumulative CPU user/sys and RSS
(read straight from /proc/PID/stat, the file psutil reads them from, kept open between ticks);
every `detail_every` ticks threads, context switches and I/O; every `full_every` ticks from tick
`full_first` on, USS and PSS (they walk /proc/PID/smaps_rollup, which costs far more: ~0.2 ms for
the app, 1-3 ms for the runner itself or dockerd here). It records the load generator's own
process and host-wide CPU too, and the sampler's own CPU time, so its cost is a stored figure. Given
`counters` (bench.metrics.netpath: the interfaces a request crosses), it reads them on every tick as well.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Callable

import psutil

from bench.metrics.kept_open import KeptOpen
from bench.roles import ROLE_LOADGEN, RoleProcess

PROCESS_COLUMNS = ("t", "pid", "role", "name", "cpu_user_s", "cpu_sys_s", "rss_bytes", "uss_bytes", "pss_bytes",
                   "threads", "ctx_voluntary", "ctx_involuntary", "read_bytes", "write_bytes")
HOST_COLUMNS = ("t", "cpu_user_s", "cpu_sys_s", "cpu_idle_s", "cpu_iowait_s", "cpu_steal_s", "mem_used_bytes",
                "mem_available_bytes")

NAN = float("nan")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def cpu_and_rss(pid: int) -> tuple[float, float, int]:
    """(user CPU s, system CPU s, RSS bytes) of a process from /proc/PID/stat: the very counters
    psutil's cpu_times() and memory_info().rss give (utime, stime; rss is the sum statm reports),
    read from one file without psutil's layers, as the light tick is most of the sampler's cost.
    NoSuchProcess once it is gone, ZombieProcess once it has exited unreaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            line = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        raise psutil.NoSuchProcess(pid) from None
    return _parse_stat(line, pid)


def _parse_stat(line: bytes, pid: int) -> tuple[float, float, int]:
    fields = line[line.rindex(b")") + 2:].split()  # after the name, which may hold spaces and ")"
    if fields[0] == b"Z":
        raise psutil.ZombieProcess(pid)
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS, int(fields[21]) * _PAGE_BYTES


def _stat_path(pid: int) -> str:
    return f"/proc/{pid}/stat"


class StatFiles:
    """/proc/PID/stat of each sampled process, kept open between ticks (bench.metrics.kept_open):
    once a process is reaped its reads fail and it counts as gone, never as a later one with its pid."""

    def __init__(self) -> None:
        self._files = KeptOpen()

    def cpu_and_rss(self, pid: int) -> tuple[float, float, int]:
        """What `cpu_and_rss(pid)` returns; NoSuchProcess (its file closed) once it is gone."""
        try:
            line = self._files.read(_stat_path(pid))
        except (FileNotFoundError, ProcessLookupError):
            raise psutil.NoSuchProcess(pid) from None
        return _parse_stat(line, pid)

    def forget(self, pid: int) -> None:
        self._files.forget(_stat_path(pid))

    def keep_only(self, pids) -> None:
        self._files.keep_only(_stat_path(pid) for pid in pids)

    def close(self) -> None:
        self._files.close()


class HostCpu:
    """The host's CPU counters from the first line of /proc/stat, read as psutil.cpu_times() reads
    them (the same fields over the clock tick), the file kept open between ticks."""

    def __init__(self) -> None:
        self._files = KeptOpen()

    def times(self) -> tuple[float, float, float, float, float]:
        """(user + nice, system + irq + softirq, idle, iowait, steal) in seconds."""
        head = self._files.read("/proc/stat", 512)
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(field) / _CLOCK_TICKS for field in head[:head.index(b"\n")].split()[1:9])
        return user + nice, system + irq + softirq, idle, iowait, steal

    def close(self) -> None:
        self._files.close()


def uss_and_pss(pid: int, process: psutil.Process) -> tuple[float, float]:
    """(USS, PSS) in bytes as psutil's memory_full_info() gives them (USS: the Private_* lines of
    smaps_rollup; PSS: its Pss line), read in one os.read without psutil's layers and its extra
    read of statm; psutil's own way (and its errors) where smaps_rollup cannot be read."""
    try:
        descriptor = os.open(f"/proc/{pid}/smaps_rollup", os.O_RDONLY)
        try:
            text = os.read(descriptor, 65536)
        finally:
            os.close(descriptor)
    except OSError:
        full_info = process.memory_full_info()
        return full_info.uss, getattr(full_info, "pss", NAN)
    uss_kb = pss_kb = 0
    for line in text.split(b"\n"):
        if line.startswith(b"Private_"):  # Private_Clean, Private_Dirty, Private_Hugetlb
            uss_kb += int(line.split()[1])
        elif line.startswith(b"Pss:"):
            pss_kb = int(line.split()[1])
    return uss_kb * 1024, pss_kb * 1024


class StopSignal:
    """What the sampler thread waits on between ticks, until the caller sets it: a pipe and poll(2).
    Waking from it costs ~45 us of CPU here against ~70 us for threading.Event's wait (its
    Condition and lock), and the sampler wakes ten times a second."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout_s: float) -> None:
        """Until set, or for `timeout_s` at most."""
        if not self._set:
            self._poll.poll(timeout_s * 1000)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Sampler:
    """Context manager: samples `discover()`'s processes at `hz` until the block exits.

    `t` in every row is time.monotonic(), the same clock as the load generator's window.
    """

    def __init__(self, discover: Callable[[], list[RoleProcess]], hz: float = 10.0, full_every: int = 20,
                 detail_every: int = 10, refresh_every: int = 10, extra_pids: dict[int, str] | None = None,
                 full_first: int = 0, counters: Callable[[], dict] | None = None):
        self.discover = discover
        self.interval_s = 1.0 / hz
        self.hz = hz
        self.full_every = full_every
        self.full_first = full_first
        self.detail_every = min(detail_every, full_every)
        self._names: dict[int, str] = {}
        self.refresh_every = refresh_every
        self.extra = {os.getpid(): ROLE_LOADGEN, **(extra_pids or {})}
        self.process_rows: list[tuple] = []
        self.host_rows: list[tuple] = []
        self.counters = counters
        self.counter_rows: list[tuple[float, dict]] = []  # (t, counters() at t) on every tick
        self.own_cpu_s = 0.0
        self.wall_s = 0.0
        self.ticks = 0
        self.discovery_errors = 0
        self._tracked: dict[int, tuple[str, psutil.Process]] = {}
        self._stat_files = StatFiles()
        self._stop: StopSignal | None = None
        self._thread = threading.Thread(target=self._run, name="layerbench-sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._refresh()
        self._stop = StopSignal()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else it still waits on the pipe: leave it open
            self._stop.close()

    @property
    def own_cpu_fraction(self) -> float:
        """Sampler CPU time / wall time: its cost in fractions of one core."""
        return self.own_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def _refresh(self) -> None:
        try:
            found = self.discover()
        except Exception:  # the setup may be going away; keep the processes we had
            self.discovery_errors += 1
            return
        tracked = {}
        for role_process in found:
            pid = role_process.process.pid
            # Keep the old psutil.Process: it caches the create time that guards against pid reuse.
            tracked[pid] = self._tracked.get(pid, (role_process.role, role_process.process))
        for pid, role in self.extra.items():
            if pid not in tracked:
                tracked[pid] = self._tracked.get(pid) or (role, psutil.Process(pid))
        self._tracked = tracked
        self._stat_files.keep_only(tracked)

    def _run(self) -> None:
        cpu_began = time.thread_time()
        wall_began = time.monotonic()
        next_tick = wall_began
        self._host_cpu = HostCpu()
        try:
            while not self._stop.is_set():
                self._tick()
                self.ticks += 1
                if self.ticks % self.refresh_every == 0:
                    self._refresh()
                next_tick += self.interval_s
                self._stop.wait(max(0.0, next_tick - time.monotonic()))
            self._tick()  # one last row so the window's end is bracketed
        finally:
            self._host_cpu.close()
            self._stat_files.close()
        self.own_cpu_s = time.thread_time() - cpu_began
        self.wall_s = time.monotonic() - wall_began

    def _tick(self) -> None:
        # Light ticks read one small file per process (stat: CPU and RSS). Counters that only need a
        # delta (threads, context switches, I/O) are read every `detail_every` ticks, USS/PSS
        # (a walk of smaps_rollup, ~0.2-3 ms a process) every `full_every` from `full_first` on:
        # cheap enough to stay under 1% of a core at 10 Hz. Columns not read on a tick are NaN.
        now = time.monotonic()
        detail = self.ticks % self.detail_every == 0
        full = self.ticks >= self.full_first and (self.ticks - self.full_first) % self.full_every == 0
        for pid, (role, process) in list(self._tracked.items()):
            try:
                cpu_user_s, cpu_sys_s, rss_bytes = self._stat_files.cpu_and_rss(pid)
                uss = pss = threads = ctx_voluntary = ctx_involuntary = read_bytes = write_bytes = NAN
                if full:
                    uss, pss = uss_and_pss(pid, process)
                if detail:
                    with process.oneshot():
                        threads = process.num_threads()
                        ctx = process.num_ctx_switches()
                        ctx_voluntary, ctx_involuntary = ctx.voluntary, ctx.involuntary
                        try:
                            io = process.io_counters()
                            read_bytes, write_bytes = io.read_bytes, io.write_bytes
                        except (psutil.AccessDenied, AttributeError):
                            pass
                self.process_rows.append((now, pid, role, self._names.get(pid) or self._name(pid, process),
                                          cpu_user_s, cpu_sys_s, rss_bytes, uss, pss, threads, ctx_voluntary,
                                          ctx_involuntary, read_bytes, write_bytes))
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                self._tracked.pop(pid, None)
                self._stat_files.forget(pid)
            except psutil.AccessDenied:
                pass
        memory = psutil.virtual_memory() if detail else None
        self.host_rows.append((now, *self._host_cpu.times(), memory.used if memory else NAN,
                               memory.available if memory else NAN))
        if self.counters is not None:
            try:
                self.counter_rows.append((now, self.counters()))
            except Exception:  # a counter that cannot be read leaves its tick out, never the sampler
                pass

    def _name(self, pid: int, process: psutil.Process) -> str:
        self._names[pid] = name = process.name()
        return name
