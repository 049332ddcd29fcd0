"""The built-in load generator against the real app: its counts match the app's own."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from bench.load.builtin import LoadSpec, run_load


def served(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.load(response)["requests_served"].get(path, 0)


def test_closed_loop_counts_match_the_app(app_server):
    before = served(app_server, "/json")
    result = run_load(app_server, LoadSpec(path="/json", connections=4, duration_s=0.5, warmup_s=0.2))
    after = served(app_server, "/json")
    assert result.errors == {}
    assert result.requests > 50
    assert after - before == result.sent  # every request sent was served, warm-up included
    assert result.requests <= result.sent
    assert len(result.latency_ms) == len(result.app_ms) == result.requests
    assert np.all(result.latency_ms > 0)
    # Client latency includes the in-app time reported by Server-Timing.
    assert np.median(result.latency_ms) >= np.median(result.app_ms)


def test_open_loop_holds_the_rate(app_server):
    result = run_load(app_server, LoadSpec(path="/hello", mode="open", rate_rps=200, connections=2,
                                           duration_s=0.5, warmup_s=0.1))
    assert 150 <= result.throughput_rps <= 250
    assert result.errors == {}


def test_errors_are_counted_by_kind(app_server):
    result = run_load(app_server, LoadSpec(path="/cpu?n=0", connections=2, duration_s=0.3, warmup_s=0.0))
    assert result.requests == 0
    assert result.errors.get("http_400", 0) > 0


def test_refused_connections_are_counted():
    from bench.netutil import free_port

    result = run_load(free_port(), LoadSpec(path="/hello", connections=1, duration_s=0.3, warmup_s=0.0))
    assert result.requests == 0 and result.errors.get("connect", 0) > 0


@pytest.mark.parametrize("spec", [LoadSpec(mode="sideways"), LoadSpec(mode="open"), LoadSpec(connections=0)])
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError):
        run_load(1, spec)


@pytest.mark.parametrize("loop", ["default", "stdlib"])
def test_sigterm_during_load_interrupts_the_run(app_server, loop, monkeypatch):
    """The runner's SIGTERM handler raises inside the event loop; the loop must not swallow it
    (uvloop logs an exception raised in a protocol callback and goes on)."""
    import asyncio
    import os
    import signal
    import threading

    from bench.events import RunInterrupted
    from bench.load import builtin
    from bench.runner import sigterm_as_interrupt

    if loop == "stdlib":
        monkeypatch.setattr(builtin, "_event_loop_factory", lambda: asyncio.new_event_loop)

    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGTERM))
    with sigterm_as_interrupt():
        timer.start()
        with pytest.raises(RunInterrupted):
            run_load(app_server, LoadSpec(path="/hello", connections=2, duration_s=5.0, warmup_s=0.0))
    timer.join()


def test_several_processes_split_the_connections_and_merge_what_they_measured(app_server):
    before = served(app_server, "/json")
    result = run_load(app_server, LoadSpec(path="/json", connections=4, duration_s=0.5, warmup_s=0.1, processes=2))
    after = served(app_server, "/json")
    assert result.errors == {} and result.requests > 50
    assert after - before == result.sent  # both processes' requests, warm-up included
    assert result.generator_processes == 2 and len(result.notes["busy_fraction_per_process"]) == 2
    assert all(len(cpus) == 1 for cpus in result.notes["generator_cpus"])  # each process pinned to one CPU
    assert len(result.latency_ms) == len(result.app_ms) == result.requests
    # One measured window: the two processes' windows were aligned on the monotonic clock.
    # (Two windows one after the other would be twice as long; the slack is for a loaded machine.)
    assert result.window[1] - result.window[0] == pytest.approx(result.duration_s, rel=0.3)


def test_open_loop_holds_the_rate_across_processes(app_server):
    result = run_load(app_server, LoadSpec(path="/hello", mode="open", rate_rps=200, connections=2,
                                           duration_s=0.5, warmup_s=0.1, processes=2))
    assert 150 <= result.throughput_rps <= 250
    assert result.errors == {} and result.generator_processes == 2


def test_the_generator_reports_its_own_cpu(app_server):
    result = run_load(app_server, LoadSpec(path="/hello", connections=2, duration_s=0.5, warmup_s=0.1))
    assert result.generator_processes == 1 and result.notes["event_loop"] in ("uvloop", "asyncio")
    assert 0 < result.generator_cpu_s <= result.duration_s * 1.05
    assert result.generator_busy_fraction == pytest.approx(result.generator_cpu_s / result.duration_s)


@pytest.mark.parametrize("processes, expected", [(1, 1), (3, 3), (99, 8), ("auto", None)])
def test_process_count(processes, expected):
    import os

    count = LoadSpec(connections=8, processes=processes).process_count()
    assert count == (expected or min(8, len(os.sched_getaffinity(0))))


@pytest.mark.parametrize("processes", [0, -1, "many", 1.5, True])
def test_bad_process_counts_are_refused(processes):
    with pytest.raises(ValueError):
        run_load(1, LoadSpec(processes=processes))


def test_an_interrupt_stops_the_generator_processes(app_server):
    import multiprocessing
    import os
    import signal
    import threading

    from bench.events import RunInterrupted
    from bench.runner import sigterm_as_interrupt

    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM))  # once both processes run
    with sigterm_as_interrupt():
        timer.start()
        with pytest.raises(RunInterrupted):
            run_load(app_server, LoadSpec(path="/hello", connections=2, duration_s=10.0, warmup_s=0.0, processes=2))
    timer.join()
    assert multiprocessing.active_children() == []


def test_wrk_sends_the_headers_the_built_in_generator_sends():
    # The app parses both and echoes the trace id: from wrk without them, a request cost it ~6 us
    # less, and built-in / wrk measured that app work, not the generators (0.88 where the clients tied).
    from bench.load import wrk
    from bench.load.spec import TRACE_HEADER, USER_AGENT

    assert f'wrk.headers["User-Agent"] = "{USER_AGENT}"' in wrk._LUA
    assert f'wrk.headers["{TRACE_HEADER}"] = ' in wrk._LUA
    assert f"\r\nUser-Agent: {USER_AGENT}\r\n{TRACE_HEADER}: ".encode() in _request_prefix()


def _request_prefix() -> bytes:
    import asyncio

    from bench.load.connection import Client, Recorder

    async def build() -> bytes:
        return Client(8080, LoadSpec(), Recorder()).request_prefix
    return asyncio.run(build())
