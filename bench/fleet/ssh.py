"""The system's OpenSSH client, one master connection per host (ControlMaster), so the many short
commands of a fleet run cost a round trip each instead of a handshake each. No protocol of our
own: every remote step is a shell command; files travel as tar streams over the same connection.

Masters live in a private folder of the session and are closed when it ends (`ssh -O exit`), so
none outlives the command; a host that vanishes is noticed by ServerAlive (about 15 s at most).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from bench.errors import LayerbenchError
from bench.fleet.hostsfile import HostEntry

CONNECTION_LOST = 255  # ssh's own exit status: it could not connect, or the connection died
BASE_OPTIONS = ("BatchMode=yes", "ConnectTimeout=10", "ServerAliveInterval=5", "ServerAliveCountMax=3",
                "ControlMaster=auto", "ControlPersist=60")


class RemoteError(LayerbenchError):
    """A remote step failed; the message names the host and the step."""


def last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class Ssh:
    """Commands on one host through its master connection."""

    def __init__(self, entry: HostEntry, control_dir: Path):
        self.entry = entry
        self.name = entry.name
        self.control_dir = control_dir

    def options(self) -> list[str]:
        options = [argument for option in BASE_OPTIONS for argument in ("-o", option)]
        options += ["-o", f"ControlPath={self.control_dir}/%C"]
        if self.entry.user:
            options += ["-l", self.entry.user]
        if self.entry.port:
            options += ["-p", str(self.entry.port)]
        if self.entry.key:
            options += ["-i", str(self.entry.key), "-o", "IdentitiesOnly=yes"]
        for name, value in self.entry.options.items():
            options += ["-o", f"{name}={value}"]
        return options

    def argv(self, command: str) -> list[str]:
        """ssh's argv that runs the shell `command` on the host ('--': the host is never an option)."""
        return ["ssh", *self.options(), "--", self.entry.host, command]

    def run(self, command: str, input: bytes | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.argv(command), input=input, capture_output=True, timeout=timeout_s,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.name}: `{command[:60]}` did not finish within {timeout_s:.0f} s") from None

    def check(self, command: str, step: str, input: bytes | None = None, timeout_s: float = 120) -> str:
        """Run `command`; its stdout as text. RemoteError naming the host and `step` otherwise."""
        result = self.run(command, input, timeout_s)
        if result.returncode != 0:
            raise RemoteError(self.failure(step, result.returncode, result.stderr))
        return result.stdout.decode(errors="replace")

    def failure(self, step: str, returncode: int | None, stderr: str | bytes) -> str:
        """One line: what failed where, and why as far as ssh or the command said."""
        said = last_line(stderr)
        if returncode == CONNECTION_LOST:
            return f"{self.name} ({self.entry.target}): {step}: connection failed or lost: {said or 'no message'}"
        return f"{self.name}: {step} failed (exit {returncode}){': ' + said if said else ''}"

    def popen(self, command: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
        """The command with its stdout and stderr as pipes (bytes), for streaming."""
        return subprocess.Popen(self.argv(command), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(self, sources: list[tuple[Path, list[str]]], remote_dir: str, step: str = "copy") -> None:
        """Copy files (each folder with the names in it) into remote_dir, as one tar stream."""
        names = [argument for folder, files in sources if files for argument in ("-C", str(folder), *files)]
        if not names:
            return
        with subprocess.Popen(["tar", "-cf", "-", *names], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as tar:
            unpack = subprocess.run(self.argv(f"mkdir -p {remote_dir} && tar -C {remote_dir} -xf -"),
                                    stdin=tar.stdout, capture_output=True)
            tar.stdout.close()
        if tar.returncode != 0 or unpack.returncode != 0:
            raise RemoteError(self.failure(step, unpack.returncode or tar.returncode, unpack.stderr))

    def fetch(self, remote_parent: str, name: str, local_parent: Path, step: str = "fetch") -> Path:
        """Copy remote_parent/name (a folder) to local_parent/name, as one tar stream."""
        local_parent.mkdir(parents=True, exist_ok=True)
        with subprocess.Popen(self.argv(f"tar -C {remote_parent} -cf - {shlex.quote(name)}"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as remote:
            unpack = subprocess.run(["tar", "-C", str(local_parent), "--no-same-owner", "-xf", "-"],
                                    stdin=remote.stdout, capture_output=True)
            remote.stdout.close()
            stderr = remote.stderr.read()
        if remote.returncode != 0 or unpack.returncode != 0:
            raise RemoteError(self.failure(step, remote.returncode or unpack.returncode, stderr or unpack.stderr))
        return local_parent / name

    def close(self) -> None:
        """End the master connection (if any); quiet when there is none or the host is gone."""
        subprocess.run(["ssh", *self.options(), "-O", "exit", "--", self.entry.host], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=15)


class SshSession:
    """The ssh connections of one command: a private folder for the masters, closed at the end."""

    def __init__(self):
        if shutil.which("ssh") is None:
            raise RemoteError("the OpenSSH client is missing (run: apt-get install openssh-client)")
        # Short: a ControlPath is a unix socket path (at most 108 bytes); %C adds 40 characters.
        self.control_dir = Path(tempfile.mkdtemp(prefix="lb-ssh-"))
        self._open: dict[str, Ssh] = {}
        self._lock = threading.Lock()

    def to(self, entry: HostEntry) -> Ssh:
        with self._lock:
            if entry.name not in self._open:
                self._open[entry.name] = Ssh(entry, self.control_dir)
            return self._open[entry.name]

    def close(self) -> None:
        for connection in self._open.values():
            try:
                connection.close()
            except (OSError, subprocess.SubprocessError):
                pass
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def __enter__(self) -> "SshSession":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
