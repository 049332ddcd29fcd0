"""The private folder one fleet command keeps on this machine, /tmp/lb-ssh-XXXXXX: ansible-runner's
data folder, the ssh master sockets (cp/, Ansible's ControlPath) and the run folders fetched.

The command holds a lock in it (bench.runlock) while it runs, and removes it at the end after
closing the masters (`ssh -O exit`; they would linger for ControlPersist). A command killed with
SIGKILL cannot; `bench clean` removes the folders whose lock nobody holds (and, for folders made
before the lock, those no live process names on its command line).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.runlock import LOCK_FILE, RunLock, holder

PREFIX = "lb-ssh-"


class LocalFolder:
    """A fresh private folder for one command; a context manager that removes it."""

    def __init__(self):
        # Short, in /tmp: a ControlPath is a unix socket path (at most 108 bytes); %C adds 40.
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.control_dir = self.path / "cp"
        self.control_dir.mkdir()
        self.lock = RunLock(self.path)
        self.lock.acquire()

    def close(self) -> None:
        close_masters(self.path)
        self.lock.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "LocalFolder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def close_masters(folder: Path) -> None:
    """End every ssh master whose socket is in the folder (quiet when one is already gone). Older
    layerbench kept its sockets at the top of the folder, Ansible's are in cp/."""
    sockets = [path for path in [*Path(folder).glob("*"), *Path(folder).glob("cp/*")] if path.is_socket()]
    for socket in sockets:
        try:
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "layerbench-master"],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=15)
        except (OSError, subprocess.SubprocessError):
            pass


def _naming(folder: Path) -> list:
    """The processes whose command line names the folder (ansible-playbook, its forks, ssh masters)."""
    import psutil

    return [process for process in psutil.process_iter(["cmdline"])
            if any(str(folder) in part for part in process.info.get("cmdline") or [])]


def _named_by_a_process(folder: Path) -> bool:
    return bool(_naming(folder))


def end_processes(folder: Path, grace_s: float = 5.0) -> list[str]:
    """SIGTERM, then SIGKILL after grace_s, to what a killed command left running on its folder:
    an ansible-playbook whose parent died can stay blocked on its terminal for good."""
    import psutil

    found = _naming(folder)
    for process in found:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(found, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return [f"process {process.pid} ({process.info['cmdline'][0] if process.info.get('cmdline') else '?'}) of "
            f"{folder}" for process in found]


def dead_folders(temp: Path | None = None) -> list[Path]:
    """The lb-ssh-* folders of commands that are gone."""
    found = []
    for folder in sorted(Path(temp or tempfile.gettempdir()).glob(f"{PREFIX}*")):
        if not folder.is_dir():
            continue
        if (folder / LOCK_FILE).exists():
            if holder(folder) is None:
                found.append(folder)
        elif not _named_by_a_process(folder):
            found.append(folder)
    return found


def clean(temp: Path | None = None) -> list[str]:
    """Remove the folders of dead commands, their masters closed first; one line per folder."""
    removed = []
    for folder in dead_folders(temp):
        close_masters(folder)
        removed += end_processes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(f"ssh folder {folder}")
    return removed
