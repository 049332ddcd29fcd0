"""The generator says when it is the bottleneck: its busy figure is high when it is made the limit
on purpose (a server that answers at once with a reply that is costly to parse) and low when the
app is the limit (the real app's /cpu). Servers run as separate processes: in this process they
would share the generator's GIL and hide its cost."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from bench.load import wrk
from bench.load.builtin import GENERATOR_BOUND_BUSY, LoadSpec, is_generator_bound, run_load
from bench.netutil import free_port
from tests.conftest import require

pytestmark = pytest.mark.integration

# Answers every request at once with one pre-built write: a chunked body of 3000 one-byte chunks.
# Cheap to send (one sendall of bytes made once), costly to frame (a Python step per chunk).
CHUNKY_SERVER = r"""
import socket, sys, threading
reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 3000 + b"0\r\n\r\n")
listener = socket.socket()
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
def serve(connection):
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    while True:
        data = connection.recv(65536)
        if not data:
            return
        buffer += data
        while b"\r\n\r\n" in buffer:
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            connection.sendall(reply)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def _cpus() -> tuple[int, int]:
    """(load CPU, server CPU): different ones when this process may use two."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[-1]


@contextlib.contextmanager
def _server(command: list[str], port: int, cpu: int, ready_path: str) -> Iterator[int]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.sched_setaffinity(process.pid, {cpu})
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server {command[:3]} did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_a_generator_made_the_bottleneck_says_so():
    load_cpu, server_cpu = _cpus()
    port = free_port()
    with _server([sys.executable, "-c", CHUNKY_SERVER, str(port)], port, server_cpu, "/"), _pinned(load_cpu):
        result = run_load(port, LoadSpec(path="/", connections=4, duration_s=1.5, warmup_s=0.3))
    assert result.errors == {} and result.requests > 0
    assert result.generator_cpu_s > 0
    assert is_generator_bound(result), (result.generator_busy_fraction, result.generator_runnable_fraction)


def test_a_generator_waiting_on_the_app_is_not_the_bottleneck():
    load_cpu, app_cpu = _cpus()
    port = free_port()
    command = [sys.executable, "-m", "bench.app", "--port", str(port)]
    with _server(command, port, app_cpu, "/health"), _pinned(load_cpu):
        result = run_load(port, LoadSpec(path="/cpu?n=20000", connections=4, duration_s=1.5, warmup_s=0.3))
    assert result.errors == {} and result.requests > 0
    assert result.generator_busy_fraction is not None and result.generator_busy_fraction < 0.3
    assert not is_generator_bound(result)


def test_wrk_reports_its_cpu_too():
    require(wrk.available() is None, str(wrk.available()))
    load_cpu, app_cpu = _cpus()
    port = free_port()
    command = [sys.executable, "-m", "bench.app", "--port", str(port)]
    with _server(command, port, app_cpu, "/health"):
        result = wrk.run_wrk(port, LoadSpec(path="/cpu?n=20000", connections=4, duration_s=1.0, warmup_s=0.0),
                             (load_cpu,))
    assert result.requests > 0 and result.generator_cpu_s is not None and result.generator_cpu_s > 0
    assert result.generator_busy_fraction < GENERATOR_BOUND_BUSY and not is_generator_bound(result)
