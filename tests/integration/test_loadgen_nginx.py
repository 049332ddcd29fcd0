"""The built-in generator against the real nginx (Debian's), and tools/generator_check.py --target
nginx end to end: it prints the ratio, and leaves no nginx and no temporary folder behind, Ctrl-C
included."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from bench.load import reference_nginx, wrk
from bench.load.builtin import LoadSpec, run_load
from tests.conftest import require

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _nginx_processes(folder_marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "nginx" in cmdline and folder_marker in cmdline:
            found.append(process)
    return found


@pytest.fixture(scope="module")
def nginx_port():
    require(reference_nginx.available() is None, str(reference_nginx.available()))
    with reference_nginx.running(max(os.sched_getaffinity(0))) as port:
        yield port


@pytest.mark.parametrize("processes", [1, 2])
def test_every_nginx_reply_is_a_success(nginx_port, processes):
    result = run_load(nginx_port, LoadSpec(path=reference_nginx.HELLO_PATH, connections=4, duration_s=1.0,
                                           warmup_s=0.2, processes=processes))
    assert result.errors == {}, result.errors  # nginx echoes no trace id and sends no Server-Timing
    assert result.requests > 1000 and result.generator_processes == processes
    assert all(math.isnan(value) for value in result.app_ms[:100])
    assert 0 < result.generator_busy_fraction <= 1.05


def test_nginx_keep_alive_limit_reconnects_without_errors(nginx_port):
    # Debian's nginx closes a keep-alive connection after 1000 requests with `Connection: close`.
    result = run_load(nginx_port, LoadSpec(path=reference_nginx.HELLO_PATH, connections=1, duration_s=1.0,
                                           warmup_s=0.0))
    assert result.requests > 1000 and result.errors == {}


def test_nginx_is_stopped_and_its_folder_removed(tmp_path, monkeypatch):
    require(reference_nginx.available() is None, str(reference_nginx.available()))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its folder, so its processes, are told apart
    with reference_nginx.running():
        (master,) = _nginx_processes(str(tmp_path))
        workers = master.children()
        assert workers and len(list(tmp_path.iterdir())) == 1
    assert list(tmp_path.iterdir()) == []
    assert not master.is_running() and not any(worker.is_running() for worker in workers)


def _check_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.generator_check", "--target", "nginx", *args]


def test_generator_check_on_nginx_prints_the_ratio_and_cleans_up(tmp_path):
    require(reference_nginx.available() is None, str(reference_nginx.available()))
    require(wrk.available() is None, str(wrk.available()))
    done = subprocess.run(_check_command("--repeat", "2", "--duration", "1"), capture_output=True, text=True,
                          check=False, timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=ROOT)
    ratio = float(re.search(r"built-in / wrk on nginx = ([0-9.]+) \(95% interval", done.stdout).group(1))
    # 0 at or above the goal, 3 below it (still a measurement); anything else is a failure of the script.
    assert done.returncode == (0 if ratio >= 0.9 else 3), (done.returncode, done.stdout, done.stderr)
    assert done.stdout.count("req/s") == 4
    assert list(tmp_path.iterdir()) == [] and not _nginx_processes(str(tmp_path))


def test_generator_check_interrupted_leaves_nothing_behind(tmp_path):
    require(reference_nginx.available() is None, str(reference_nginx.available()))
    require(wrk.available() is None, str(wrk.available()))
    with subprocess.Popen(_check_command("--repeat", "5", "--duration", "5"), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)},
                          cwd=ROOT) as process:
        try:
            deadline = time.monotonic() + 30
            while not _nginx_processes(str(tmp_path)) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)  # inside a trial
            assert _nginx_processes(str(tmp_path)), "nginx never started"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:  # a failed check above must not leave the script running (and its pipes to the next test)
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert list(tmp_path.iterdir()) == [] and not _nginx_processes(str(tmp_path))
