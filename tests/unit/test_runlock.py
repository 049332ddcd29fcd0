"""One writer per run: the runner's lock on its run folder, and who counts as still writing it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.errors import ResultsError
from bench.runlock import LOCK_FILE, RunLock, holder, live_writer, refuse_if_live


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
    with RunLock(tmp_path):
        assert holder(tmp_path) == os.getpid()
        with pytest.raises(ResultsError) as refused:
            RunLock(tmp_path).acquire()
        assert f"still being written by runner pid {os.getpid()}" in str(refused.value)
        assert "\n" not in str(refused.value)
    assert holder(tmp_path) is None
    with RunLock(tmp_path):  # free again once released
        pass


def test_the_lock_dies_with_its_runner_even_by_sigkill(tmp_path):
    code = (f"import sys, time; sys.path.insert(0, {os.getcwd()!r}); from bench.runlock import RunLock; "
            f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"locked"
        assert live_writer(tmp_path, child.pid) == child.pid
        with pytest.raises(ResultsError):
            refuse_if_live(tmp_path)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert (tmp_path / LOCK_FILE).exists()  # the file stays; the lock does not
    assert live_writer(tmp_path, child.pid) is None
    refuse_if_live(tmp_path)


def test_without_a_lock_file_only_a_live_layerbench_pid_counts(tmp_path):
    other = subprocess.Popen(["sleep", "30"])  # a pid that is alive but no layerbench runner (a reused pid)
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "bench", "run"])
    try:
        time.sleep(0.2)
        assert live_writer(tmp_path, other.pid) is None
        assert live_writer(tmp_path, ours.pid) == ours.pid
        assert live_writer(tmp_path, 0) is None
    finally:
        for process in (other, ours):
            process.kill()
            process.wait()
    assert live_writer(tmp_path, ours.pid) is None


def test_a_running_run_whose_pid_now_names_another_process_reads_incomplete():
    from bench.machine import this_host
    from bench.results import RunRecord, runner_identity

    pid, started = runner_identity()
    here = this_host()  # a runner's pid is judged only on the machine that wrote the run
    alive = RunRecord(run_id="r", created_at="x", runner_pid=pid, runner_started=started, runner_host=here)
    assert alive.effective_status() == "running"
    reused = RunRecord(run_id="r", created_at="x", runner_pid=pid, runner_started=started - 3600, runner_host=here)
    assert reused.effective_status() == "incomplete"
    older_format = RunRecord(run_id="r", created_at="x", runner_pid=pid, runner_host=here)  # no start time stored: the pid decides
    assert older_format.effective_status() == "running"
