"""Stand-ins for every shipped setup and app, and a load generator that sends nothing: a shipped
scenario runs through the real runner, the real sampler and every output in a second, with no
engine, no VM and no sockets under load.

A stand-in keeps its setup's whole declaration (name, options, variants, words, roles, colours,
layer-stack boxes, fixed roles), so the run it stores is shaped like a real one; only the launch
changes: the app is a thread of the test process that answers every path, and the load's figures
are drawn from a seeded random source, each layer a little slower than the one before, so every
chart and table has something to draw. Test doubles only: the real setups are tested against the
real engines in tests/integration.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import psutil

from bench.app.server import do_stats
from bench.apps import registry as app_registry
from bench.load.spec import LoadResult
from bench.roles import RoleProcess
from bench.scenario import Workload
from bench.setups import registry as setup_registry
from bench.setups.base import Instance


class _AnyPath(BaseHTTPRequestHandler):
    """Answers 200 on every path (the ready path of any app), and /stats as the python app does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    def do_GET(self):
        body = do_stats() if self.path.startswith("/stats") else b"ok\n"  # the test process's own view
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


_slowdown_by_port: dict[int, float] = {}  # what the fake load reads: how slow the layer behind a port is
_daemons: list[subprocess.Popen] = []  # the fixed-cost "engine daemons" of setups that declare fixed roles


def _slowdown(name: str, variant: str) -> float:
    """1.0 for the baseline; every other layer 1.1x to 3x slower, the same on every run."""
    return 1.0 + (zlib.crc32(f"{name}/{variant}".encode()) % 200) / 100


class StandIn:
    """Mixed in before a real setup class: keeps its declaration, replaces what touches the machine."""

    @classmethod
    def check(cls) -> str | None:
        return None

    @classmethod
    def find_leftovers(cls) -> list[str]:
        return []

    @classmethod
    def clean_leftovers(cls, run_id: str | None = None) -> list[str]:
        return []

    def prepare(self) -> None:
        if hasattr(self, "_accel"):  # a VM decides its accelerator in prepare: the one these machines have
            self._accel, self._accel_reason = "tcg", "stand-in: no KVM"

    def fixed_processes(self) -> list[RoleProcess]:
        if not self.fixed_roles:
            return []
        if not _daemons:
            _daemons.append(subprocess.Popen(["sleep", "600"]))
        return [RoleProcess(role.key, psutil.Process(daemon.pid)) for role in self.fixed_roles[:1]
                for daemon in _daemons]

    def _launch(self) -> Instance:
        began = time.perf_counter()
        server = _Server(("127.0.0.1", 0), _AnyPath)
        # Stopping waits for the serving loop's next poll: at 5 ms, not a noticeable part of each start.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True).start()
        port = server.server_address[1]
        _slowdown_by_port[port] = 1.0 if self.baseline else _slowdown(self.name, self.variant())
        me = psutil.Process()
        role = self.roles[0].key
        return Instance(port=port, processes=lambda: [RoleProcess(role, me)],
                        phases={"launch_s": time.perf_counter() - began}, facts={"stand_in": True}, handle=server)

    def _terminate(self, instance: Instance) -> None:
        server = instance.handle
        if server is not None:
            server.shutdown()
            server.server_close()
            instance.handle = None

    def _abort_launch(self) -> None:
        pass

    def _before_polling(self, instance: Instance, deadline_s: float) -> None:
        pass

    def _after_ready(self, instance: Instance) -> None:
        pass

    def diagnose(self, instance: Instance) -> str:
        return ""


class StandInApp:
    """Mixed in before a real app class: available, prepared, with its declaration unchanged."""

    @classmethod
    def check(cls) -> str | None:
        return None

    def prepare(self, progress=None) -> None:
        pass


def fake_load_with(window_s: float):
    """A load function that measures what a generator would have against the layer behind a port in
    `workload.duration`: seeded figures, no request sent, in a window of `window_s` the sampler
    brackets (0.15 s or more gives it a tick inside the window, so memory figures too)."""
    def fake_load(port: int, workload: Workload) -> LoadResult:
        slowdown = _slowdown_by_port.get(port, 1.0)
        rng = np.random.default_rng(zlib.crc32(f"{port}/{workload.name}".encode()))
        began = time.monotonic()
        while time.monotonic() - began < window_s / 4:  # the "app" (this process) works for a quarter of the
            zlib.crc32(b"x" * 4096)                        # window: its CPU per request is then never zero
        time.sleep(max(0.0, began + window_s - time.monotonic()))
        window = (began, time.monotonic())
        requests = int(2000 / slowdown) + int(rng.integers(0, 50))
        latency_ms = rng.lognormal(np.log(0.4 * slowdown), 0.3, requests)
        return LoadResult(requests=requests, errors={}, duration_s=workload.duration, latency_ms=latency_ms,
                          app_ms=latency_ms * 0.3, window=window, sent=requests, generator_processes=1,
                          generator_cpu_s=0.2 * workload.duration, generator_wait_s=0.0,
                          generator_busy_fraction=0.2, longest_gap_s=0.001, longest_gap_end_s=0.0,
                          generator=workload.load)  # the generator the workload names, as the real ones say
    return fake_load


fake_load = fake_load_with(0.02)


# An idle or density window only waits while the sampler reads: a stand-in's is 20 ms, sampled at 200 Hz so
# that ticks (memory figures) still fall inside it, instead of the 0.1 s floor every run has at 10 Hz.
FOOTPRINT_WINDOW_S = 0.02
FOOTPRINT_SAMPLER_HZ = 200.0


def _short_footprints(sampled_window):
    def short(instance, workload: Workload, load, sampler_hz: float, counters=None):
        if workload.kind in ("idle", "density"):
            workload = workload.model_copy(update={"duration": FOOTPRINT_WINDOW_S, "warmup": 0.0})
            sampler_hz = FOOTPRINT_SAMPLER_HZ
        return sampled_window(instance, workload, load, sampler_hz, counters)
    return short


@contextlib.contextmanager
def standing_in(monkeypatch) -> Iterator[None]:
    """For the block: every registered setup and app replaced by its stand-in, the runner's load
    generator by fake_load, and its idle and density windows shortened (FOOTPRINT_WINDOW_S)."""
    import bench.runner as runner
    from bench.runner import measure

    for name in setup_registry.names():
        real = setup_registry.get(name)
        monkeypatch.setitem(setup_registry._REGISTRY, name, type(f"StandIn{real.__name__}", (StandIn, real), {}))
    for kind in app_registry.kinds():
        real = app_registry.get(kind)
        monkeypatch.setitem(app_registry._REGISTRY, kind, type(f"StandIn{real.__name__}", (StandInApp, real), {}))
    monkeypatch.setattr(runner, "generator_for", lambda pinning: fake_load)
    monkeypatch.setattr(measure, "_sampled_window", _short_footprints(measure._sampled_window))
    # Density weighs MemAvailable before and after with five reads 0.1 s apart; one read will do here.
    monkeypatch.setattr(runner, "mem_available_now", lambda: float(psutil.virtual_memory().available))
    try:
        yield
    finally:
        while _daemons:
            daemon = _daemons.pop()
            daemon.kill()
            daemon.wait()
        _slowdown_by_port.clear()


# Short windows and two rounds: enough for an interval and every figure, a fraction of a second each.
SHORT_RUN = ("--repeat", "2", "--duration", "0.1", "--warmup", "0")


def bench_ok(*args: str) -> str:
    """`bench ARGS` in this process; its standard output (notes such as the gate's go to stderr, as a
    pipe to a file would see them), after asserting it exited 0."""
    from typer.testing import CliRunner

    from bench.cli import app

    outcome = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})  # a wide terminal: nothing cut
    assert outcome.exit_code == 0, (args, outcome.output, outcome.exception)
    return outcome.stdout


def run_shipped(name: str, out, monkeypatch, report: bool) -> Path:
    """`bench run NAME` (short windows) with every setup and app stood in for; the run folder."""
    with standing_in(monkeypatch):
        printed = bench_ok("run", name, *SHORT_RUN, "--out", str(out), "--report" if report else "--no-report")
    assert "error" not in printed.lower(), printed
    (run_dir,) = [path for path in Path(out).iterdir() if path.is_dir()]
    return run_dir
