"""The sampler attributes processes to roles and measures CPU over exactly the window."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from bench.load.builtin import LoadResult
from bench.metrics import sampler as S
from bench.metrics.sampler import Sampler, cpu_and_rss
from bench.metrics.window import summarize_host, summarize_processes
from bench.roles import ROLE_LOADGEN, RoleProcess
from bench.runner.measure import _sampled_window
from bench.scenario import Workload
from bench.setups.base import Instance
from bench.setups.procutil import descendant_pids

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


def test_cpu_and_rss_reads_what_psutil_reads():
    # The light tick reads /proc/PID/stat itself; the figures must be psutil's, not merely close.
    process = psutil.Process()
    before = process.cpu_times()
    user_s, sys_s, rss_bytes = cpu_and_rss(os.getpid())
    after, rss_after = process.cpu_times(), process.memory_info().rss
    assert before.user <= user_s <= after.user and before.system <= sys_s <= after.system
    assert abs(rss_bytes - rss_after) < 4 * 1024 * 1024  # the same counter, read a moment apart


def test_cpu_and_rss_of_a_process_with_spaces_and_a_parenthesis_in_its_name():
    rename = "open('/proc/self/comm', 'w').write('odd) name (x'); print('ok', flush=True); import time; time.sleep(5)"
    child = subprocess.Popen([sys.executable, "-c", rename], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ok\n"
        assert psutil.Process(child.pid).name() == "odd) name (x"
        user_s, sys_s, rss_bytes = cpu_and_rss(child.pid)
        assert user_s >= 0 and sys_s >= 0
        assert abs(rss_bytes - psutil.Process(child.pid).memory_info().rss) < 4 * 1024 * 1024
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    with pytest.raises(psutil.NoSuchProcess):
        cpu_and_rss(child.pid)


def test_a_load_trial_reads_uss_and_pss_inside_its_window_and_not_in_the_warmup():
    # USS/PSS cost ~1 ms a process: a load trial reads them where its window is, never in the warm-up.
    process = psutil.Process()
    instance = Instance(port=0, processes=lambda: [RoleProcess("app", process)])
    workload = Workload(name="hello", endpoint="hello", duration=0.6, warmup=0.2)

    def load(port, workload):
        time.sleep(workload.warmup)
        began = time.monotonic()
        time.sleep(workload.duration)
        return LoadResult(requests=1, errors={}, duration_s=workload.duration, latency_ms=np.zeros(1),
                          app_ms=np.zeros(1), window=(began, time.monotonic()))

    sampler, _, window = _sampled_window(instance, workload, load, sampler_hz=10.0)
    full_times = sorted({row[0] for row in sampler.process_rows if math.isfinite(row[7])})
    assert full_times, "no USS/PSS read at all"
    assert all(window[0] <= t <= window[1] for t in full_times)
    assert len(full_times) == 1  # once per 2 s of a load window (in its middle when shorter)


def test_descendant_pids_finds_what_psutil_finds_grandchildren_included():
    # Bare refreshes an app's children from /proc/PID/task/TID/children instead of scanning every process.
    nested = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(5)']); " \
             "print('ok', flush=True); time.sleep(5)"
    child = subprocess.Popen([sys.executable, "-c", nested], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ok\n"
        found = descendant_pids(os.getpid())
        expected = {p.pid for p in psutil.Process().children(recursive=True)}
        assert found is not None and set(found) == expected and len(expected) >= 2
    finally:
        for process in psutil.Process(child.pid).children(recursive=True):
            process.kill()
        child.kill()
        child.wait()
        child.stdout.close()


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_stat_files_read_what_cpu_and_rss_reads_and_let_go_of_a_reaped_process():
    # The light tick keeps /proc/PID/stat open and reads it again from offset 0: the kernel must give
    # fresh figures each time, and a reaped process must count as gone, its descriptor closed.
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    files = S.StatFiles()
    try:
        opened = _open_descriptors()
        first = files.cpu_and_rss(child.pid)
        assert _open_descriptors() == opened + 1
        time.sleep(0.3)
        second = files.cpu_and_rss(child.pid)
        assert second[0] + second[1] > first[0] + first[1]  # read anew, not a cached first read
        direct = cpu_and_rss(child.pid)
        assert second[0] <= direct[0] and second[1] <= direct[1]
    finally:
        child.kill()
        child.wait()
    with pytest.raises(psutil.NoSuchProcess):
        files.cpu_and_rss(child.pid)
    assert _open_descriptors() == opened
    files.close()


def test_host_cpu_reads_the_fields_psutil_reads():
    host = S.HostCpu()
    try:
        before = psutil.cpu_times()
        user_s, system_s, idle_s, iowait_s, steal_s = host.times()
        after = psutil.cpu_times()
    finally:
        host.close()
    assert before.user + before.nice <= user_s <= after.user + after.nice
    assert before.system + before.irq + before.softirq <= system_s <= after.system + after.irq + after.softirq
    assert before.idle <= idle_s <= after.idle and before.steal <= steal_s <= after.steal
    assert before.iowait <= iowait_s <= after.iowait


def test_uss_and_pss_are_psutils_figures():
    child = subprocess.Popen([sys.executable, "-c", "print('ok', flush=True); import time; time.sleep(5)"],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ok\n"  # settled: its memory no longer moves
        process = psutil.Process(child.pid)
        full_info = process.memory_full_info()
        assert S.uss_and_pss(child.pid, process) == (full_info.uss, full_info.pss)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_the_sampler_stops_at_once_and_leaves_no_descriptor_open():
    # It waits between ticks on a pipe (cheaper to wake from than threading.Event): setting the stop
    # must still end it at once, not at the next tick, and every file it kept open must be closed.
    opened = _open_descriptors()
    with Sampler(lambda: [RoleProcess("app", psutil.Process())], hz=1.0) as sampler:
        time.sleep(0.2)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 0.5  # a tick is 1 s here
    assert sampler.ticks == 1 and len(sampler.host_rows) == 2  # the first tick and the closing one
    assert _open_descriptors() == opened
