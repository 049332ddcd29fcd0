"""One writer per run: the runner holds an exclusive lock on a file in the run folder.

The lock is an flock(2) on `<run>/runner.lock`: the kernel releases it when the runner exits,
however it dies (even SIGKILL), so a stale lock cannot outlive its run and a reused pid cannot
fake one. `--resume` of a run whose lock is held is refused; `bench clean --run` spares it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bench.errors import ResultsError

LOCK_FILE = "runner.lock"


class RunLock:
    """The exclusive lock a runner holds on its run folder while it writes it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or ResultsError naming the runner that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by apps or QEMUs (O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            refuse_if_live(self.path.parent)
            raise ResultsError(f"run {self.path.parent.name} is locked by another runner") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the message another runner prints
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def holder(run_dir: Path) -> int | None:
    """The pid of the runner writing run_dir right now (0 if it did not say), or None when none is."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no runner of this version ever wrote it, or it is not a run
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return int(os.read(fd, 32).decode().strip() or 0)
            except ValueError:
                return 0
        return None
    finally:
        os.close(fd)  # also releases the shared lock taken to test it


def live_writer(run_dir: Path, runner_pid: int = 0) -> int | None:
    """The pid of a runner still writing run_dir (0 if unknown), else None.

    The lock decides; a run folder without a lock file (written by an older layerbench) counts as
    live while its recorded runner pid is alive and is a layerbench process (not a reused pid).
    """
    if (Path(run_dir) / LOCK_FILE).exists():
        return holder(run_dir)
    return runner_pid if runner_pid and _is_layerbench(runner_pid) else None


def refuse_if_live(run_dir: Path, runner_pid: int = 0) -> None:
    """ResultsError (one line) when a runner is still writing run_dir."""
    pid = live_writer(run_dir, runner_pid)
    if pid is not None:
        raise ResultsError(f"run {Path(run_dir).name} is still being written by {_who(pid)}; a run has one writer: "
                           f"wait for it to end or stop it first")


def _is_layerbench(pid: int) -> bool:
    import psutil

    try:
        return any("bench" in part for part in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def _who(pid: int | None) -> str:
    return f"runner pid {pid}" if pid else "another runner"
