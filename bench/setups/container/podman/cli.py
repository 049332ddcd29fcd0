"""Running the podman command, as root or as the dedicated rootless user.

Podman has no daemon to talk to: every action is one `podman` process that reads the engine's
state, does its work and exits. Each runs in a session of its own, so a Ctrl-C typed at the
terminal reaches the runner (which finishes or undoes what it started) and never a podman halfway
through a create. Errors come back as SetupError with Podman's own last words.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import IO

from bench.errors import SetupError
from bench.setups.container.podman.user import PodmanUser

COMMAND_TIMEOUT_S = 120
# What rootless podman prints on every call on a host whose / is not a shared mount (this kind of host).
_NOISE = re.compile(r'(time="[^"]*" )?level=warning msg="\\"/\\" is not a shared mount[^\n]*\n?')


def podman_path() -> str | None:
    return shutil.which("podman") or next((path for path in ("/usr/bin/podman", "/usr/local/bin/podman")
                                           if os.access(path, os.X_OK)), None)


def _preexec(cpus: tuple[int, ...]):
    def enter() -> None:
        if cpus:
            try:  # conmon, the network helpers and the container inherit it (rootless: no cgroup cpuset)
                os.sched_setaffinity(0, cpus)
            except OSError:
                pass
    return enter


def words(text: str) -> str:
    """Podman's message on one line, without its log prefix and the warning every rootless call prints."""
    text = _NOISE.sub("", text or "")
    text = re.sub(r'time="[^"]*" level=\w+ msg=', "", text)
    return " ".join(text.replace("Error: ", "").split())


@dataclass(frozen=True)
class Podman:
    """The podman command as one user (root, or the rootless one)."""

    user: PodmanUser

    @property
    def who(self) -> str:
        return f"rootless Podman ({self.user.name})" if self.user.rootless else "Podman (root)"

    def _kwargs(self, cpus: tuple[int, ...]) -> dict:
        kwargs: dict = {"env": self.user.env(), "start_new_session": True, "preexec_fn": _preexec(cpus),
                        "cwd": self.user.home if self.user.rootless else "/"}
        if self.user.switch:
            kwargs.update(user=self.user.uid, group=self.user.gid, extra_groups=[])
        return kwargs

    def run(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S, cpus: tuple[int, ...] = (),
            check: bool = True) -> subprocess.CompletedProcess:
        """`podman args...`; SetupError with Podman's words when it fails (check) or does not answer."""
        path = podman_path()
        if path is None:
            raise SetupError("Podman is not installed: apt-get install podman (or run sudo scripts/host-setup.sh)")
        self.user.ensure_runtime_dir()
        try:
            result = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout_s,
                                    stdin=subprocess.DEVNULL, **self._kwargs(cpus))
        except subprocess.TimeoutExpired:
            raise SetupError(f"{self.who}: `podman {' '.join(args[:2])}` did not finish within {timeout_s:.0f} s") \
                from None
        except OSError as error:
            raise SetupError(f"{self.who}: cannot run podman: {error}") from None
        if check and result.returncode != 0:
            raise SetupError(f"{self.who}: podman {args[0]} failed: {words(result.stderr) or result.returncode}")
        return result

    def json(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S):
        """The parsed JSON a `podman ... --format json` prints."""
        output = self.run(*args, timeout_s=timeout_s).stdout
        try:
            return json.loads(output or "null")
        except ValueError:
            raise SetupError(f"{self.who}: podman {args[0]} printed no JSON: {output[:200]!r}") from None

    def popen(self, *args: str, stdin: int | IO = subprocess.PIPE) -> subprocess.Popen:
        """A podman process to feed (podman load), its output in pipes."""
        path = podman_path()
        if path is None:
            raise SetupError("Podman is not installed: apt-get install podman (or run sudo scripts/host-setup.sh)")
        self.user.ensure_runtime_dir()
        return subprocess.Popen([path, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                **self._kwargs(()))

    def info(self) -> dict:
        """`podman info` as a dict (host, store, version)."""
        found = self.json("info", "--format", "json")
        return found if isinstance(found, dict) else {}

    def remove(self, name: str, stop_timeout_s: int = 0) -> bool:
        """Force-remove a container with its anonymous volumes; True when one was removed. Gone already is fine."""
        result = self.run("rm", "--force", "--volumes", "--time", str(stop_timeout_s), name, check=False)
        return result.returncode == 0 and bool(result.stdout.strip())

    def remove_volume(self, name: str) -> bool:
        result = self.run("volume", "rm", "--force", name, check=False)
        return result.returncode == 0 and bool(result.stdout.strip())
