"""The sampler attributes processes to roles and measures CPU over exactly the window."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bench.metrics.sampler import Sampler
from bench.roles import ROLE_LOADGEN
from bench.metrics.window import summarize_host, summarize_processes
from bench.roles import RoleProcess

BUSY = "import time\nend = time.process_time() + 5\nwhile time.process_time() < end: pass\n"


def test_busy_child_is_attributed_and_its_cpu_measured():
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        process = psutil.Process(child.pid)
        with Sampler(lambda: [RoleProcess("app", process)], hz=20) as sampler:
            time.sleep(0.3)
            cpu_before, start = sum(process.cpu_times()[:2]), time.monotonic()
            time.sleep(1.0)
            cpu_after, end = sum(process.cpu_times()[:2]), time.monotonic()
            window = (start, end)
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait()
    usage = summarize_processes(sampler.process_rows, window)
    app = usage["roles"]["app"]
    # Interpolated at the window's bounds, the sampler agrees with a direct reading (ticks are 50 ms).
    direct = cpu_after - cpu_before
    assert direct > 0.1
    assert abs(app["cpu_user_s"] + app["cpu_sys_s"] - direct) < 0.1
    assert app["rss_bytes"] > 1_000_000 and app["uss_bytes"] > 0
    assert ROLE_LOADGEN in usage["roles"]  # the runner's own process is always sampled
    assert sampler.ticks >= 25
    assert 0 <= sampler.own_cpu_fraction < 0.2
    host = summarize_host(sampler.host_rows, window)
    assert 0 < host["busy_fraction"] <= 1


def test_a_process_that_exits_is_dropped_without_error():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    process = psutil.Process(child.pid)
    with Sampler(lambda: [RoleProcess("app", process)], hz=50) as sampler:
        child.wait()
        time.sleep(0.2)
    pids = {row[1] for row in sampler.process_rows[-3:]}
    assert child.pid not in pids
