"""nginx as a reference target for checking the load generators: a fast C server, so the client is
what gets measured. Debian's own binary with a generated config in a temporary folder: one worker
pinned to one CPU, 127.0.0.1 on a free unprivileged port, no access log, every path in the folder.
Stopped and the folder removed on the way out, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from bench.netutil import LOOPBACK, free_port
from bench.scratch import owned_folder

NGINX = "/usr/sbin/nginx"
HELLO_PATH = "/hello"
_READY_TIMEOUT_S = 10.0
_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def available() -> str | None:
    """None when nginx can be started; else the fix."""
    return None if os.access(NGINX, os.X_OK) else f"{NGINX} is not installed (apt-get install -y nginx)"


def config(folder: Path, port: int, cpu: int | None) -> str:
    """The whole nginx.conf: one worker (on `cpu` when given), `return 200` on /hello."""
    lines = ["worker_processes 1;", "daemon off;", f"pid {folder}/nginx.pid;", f"error_log {folder}/error.log;"]
    if cpu is not None:
        lines.append(f"worker_cpu_affinity {1 << cpu:b};")  # a bit mask, CPU 0 rightmost
    if os.geteuid() == 0:
        lines.append("user nobody nogroup;")  # the worker drops root
    temp = "".join(f"  {kind}_temp_path {folder}/{kind};\n" for kind in _TEMP_KINDS)
    return "\n".join(lines) + (
        "\nevents { worker_connections 1024; }\n"
        "http {\n"
        "  access_log off;\n"
        f"{temp}"
        f"  server {{\n    listen {LOOPBACK}:{port};\n"
        f'    location = {HELLO_PATH} {{ return 200 "hello\\n"; }}\n'
        "  }\n}\n")


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=1)
    try:
        connection.request("GET", HELLO_PATH)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _wait_ready(process: subprocess.Popen, port: int, folder: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            log = (folder / "error.log").read_text(errors="replace") if (folder / "error.log").exists() else ""
            last = log.strip().splitlines()[-1] if log.strip() else "no error log"
            raise RuntimeError(f"nginx did not answer on port {port}: {last}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    """SIGQUIT would wait for open connections; SIGTERM is nginx's fast shutdown."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # master and worker share the session we gave them
            process.wait(timeout=5)


@contextlib.contextmanager
def running(cpu: int | None = None) -> Iterator[int]:
    """Start nginx (its worker pinned to `cpu`), yield its port on 127.0.0.1, then stop it."""
    reason = available()
    if reason:
        raise RuntimeError(reason)
    folder = owned_folder("nginx")  # named after this process: bench clean removes it once killed
    process = None
    try:
        os.chmod(folder, 0o755)  # the worker (nobody) only needs to traverse it
        port = free_port()
        (folder / "nginx.conf").write_text(config(folder, port, cpu))
        process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"),
                                    "-e", str(folder / "error.log")],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        _wait_ready(process, port, folder)
        yield port
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)
