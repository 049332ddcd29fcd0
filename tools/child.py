"""A helper of the measurement checks (not run on its own): a command run as a child under an
address-space limit and a timeout, measured from outside: wall time, peak RSS, exit status and
output (tools.hostile_input_check)."""

from __future__ import annotations

import os
import pty
import resource
import signal
import tempfile
import threading
import time


def _wait(pid: int, began: float, timeout_s: float):
    """(exit status, or "timeout" after killing its process group; the child's own rusage)."""
    while True:
        done, wait_status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status), usage
        if time.monotonic() - began > timeout_s:
            os.killpg(pid, signal.SIGKILL)
            return "timeout", os.wait4(pid, 0)[2]
        time.sleep(0.01)


def run_one(command: list[str], max_memory_mb: int, timeout_s: float, env: dict[str, str] | None = None,
            terminal: bool = False) -> tuple[float, float, int | None, str]:
    """(wall seconds, peak RSS MB, exit status or None if killed at the timeout, output). `terminal`:
    the child's stdout and stderr are a pseudo-terminal, as a user's shell gives it."""
    def limit():
        memory = max_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        os.setsid()

    with tempfile.TemporaryFile() as output:
        leader, follower = pty.openpty() if terminal else (None, output.fileno())
        reader = None
        if terminal:  # drain the pty as a terminal would, into the same temp file
            reader = threading.Thread(target=_drain, args=(leader, output), daemon=True)
            reader.start()
        began = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child: the bench command, its output to the temp file (or the pty)
            try:
                limit()
                os.dup2(follower, 1)
                os.dup2(follower, 2)
                if env is None:
                    os.execvp(command[0], command)
                os.execvpe(command[0], command, env)
            finally:
                os._exit(127)
        status, usage = _wait(pid, began, timeout_s)
        wall_s = time.monotonic() - began
        if terminal:
            os.close(follower)
            reader.join(timeout=10)
            os.close(leader)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    return wall_s, usage.ru_maxrss / 1024, None if status == "timeout" else status, text


def _drain(leader: int, output) -> None:
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO once the child's side is closed
            return
        if not data:
            return
        output.write(data)
