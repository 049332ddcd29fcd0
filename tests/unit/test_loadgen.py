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
                                           duration_s=1.0, warmup_s=0.2))
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


def test_sigterm_during_load_interrupts_the_run(app_server):
    """The runner's SIGTERM handler raises inside the event loop; the loop must not swallow it."""
    import os
    import signal
    import threading

    from bench.events import RunInterrupted
    from bench.runner import sigterm_as_interrupt

    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGTERM))
    with sigterm_as_interrupt():
        timer.start()
        with pytest.raises(RunInterrupted):
            run_load(app_server, LoadSpec(path="/hello", connections=2, duration_s=5.0, warmup_s=0.0))
    timer.join()
