"""A psutil sampler on a timer, in its own thread, wrapping exactly the window it measures.

Each tick records, for every host process the setup costs, cumulative CPU user/sys and RSS;
every `detail_every` ticks threads, context switches and I/O; every `full_every` ticks USS and
PSS (they walk /proc/PID/smaps_rollup, which costs far more). It records the load generator's own process and
host-wide CPU too, and the sampler's own CPU time, so its cost is a stored figure. Given `counters`
(bench.metrics.netpath: the interfaces a request crosses), it reads them on every tick as well.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

import psutil

from bench.roles import ROLE_LOADGEN, RoleProcess

PROCESS_COLUMNS = ("t", "pid", "role", "name", "cpu_user_s", "cpu_sys_s", "rss_bytes", "uss_bytes", "pss_bytes",
                   "threads", "ctx_voluntary", "ctx_involuntary", "read_bytes", "write_bytes")
HOST_COLUMNS = ("t", "cpu_user_s", "cpu_sys_s", "cpu_idle_s", "cpu_iowait_s", "cpu_steal_s", "mem_used_bytes",
                "mem_available_bytes")

NAN = float("nan")


class Sampler:
    """Context manager: samples `discover()`'s processes at `hz` until the block exits.

    `t` in every row is time.monotonic(), the same clock as the load generator's window.
    """

    def __init__(self, discover: Callable[[], list[RoleProcess]], hz: float = 10.0, full_every: int = 20,
                 detail_every: int = 10, refresh_every: int = 10, extra_pids: dict[int, str] | None = None,
                 counters: Callable[[], dict] | None = None):
        self.discover = discover
        self.interval_s = 1.0 / hz
        self.hz = hz
        self.full_every = full_every
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="layerbench-sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._refresh()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

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

    def _run(self) -> None:
        cpu_began = time.thread_time()
        wall_began = time.monotonic()
        next_tick = wall_began
        while not self._stop.is_set():
            self._tick()
            self.ticks += 1
            if self.ticks % self.refresh_every == 0:
                self._refresh()
            next_tick += self.interval_s
            self._stop.wait(max(0.0, next_tick - time.monotonic()))
        self._tick()  # one last row so the window's end is bracketed
        self.own_cpu_s = time.thread_time() - cpu_began
        self.wall_s = time.monotonic() - wall_began

    def _tick(self) -> None:
        # Light ticks read two small files per process (stat, statm). Counters that only need a
        # delta (threads, context switches, I/O) are read every `detail_every` ticks, USS/PSS
        # (a walk of smaps_rollup, ~1 ms for a large process) every `full_every`: cheap enough
        # to stay under 1% of a core at 10 Hz. Columns not read on a tick are NaN.
        now = time.monotonic()
        detail = self.ticks % self.detail_every == 0
        full = self.ticks % self.full_every == 0
        for pid, (role, process) in list(self._tracked.items()):
            try:
                with process.oneshot():
                    cpu = process.cpu_times()
                    memory = process.memory_info()
                    uss = pss = threads = ctx_voluntary = ctx_involuntary = read_bytes = write_bytes = NAN
                    if full:
                        full_info = process.memory_full_info()
                        uss, pss = full_info.uss, getattr(full_info, "pss", NAN)
                    if detail:
                        threads = process.num_threads()
                        ctx = process.num_ctx_switches()
                        ctx_voluntary, ctx_involuntary = ctx.voluntary, ctx.involuntary
                        try:
                            io = process.io_counters()
                            read_bytes, write_bytes = io.read_bytes, io.write_bytes
                        except (psutil.AccessDenied, AttributeError):
                            pass
                    self.process_rows.append((now, pid, role, self._names.get(pid) or self._name(pid, process),
                                              cpu.user, cpu.system, memory.rss, uss, pss, threads, ctx_voluntary,
                                              ctx_involuntary, read_bytes, write_bytes))
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                self._tracked.pop(pid, None)
            except psutil.AccessDenied:
                pass
        host = psutil.cpu_times()
        memory = psutil.virtual_memory() if detail else None
        self.host_rows.append((now, host.user + host.nice, host.system + getattr(host, "irq", 0)
                               + getattr(host, "softirq", 0), host.idle, getattr(host, "iowait", 0.0),
                               getattr(host, "steal", 0.0), memory.used if memory else NAN,
                               memory.available if memory else NAN))
        if self.counters is not None:
            try:
                self.counter_rows.append((now, self.counters()))
            except Exception:  # a counter that cannot be read leaves its tick out, never the sampler
                pass

    def _name(self, pid: int, process: psutil.Process) -> str:
        self._names[pid] = name = process.name()
        return name
