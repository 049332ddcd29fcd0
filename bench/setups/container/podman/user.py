"""Who runs Podman: root, or the dedicated unprivileged user that rootless runs use.

Rootless Podman runs as one user that exists for it alone (scripts/host-setup.sh creates it with
its subordinate uid and gid ranges), never as whoever started bench: its containers, images and
volumes live in that user's home, and every process it starts belongs to it, so `bench clean`
can tell them apart. A runner that is root switches to that user for each podman command; a runner
that is that user runs podman directly; anyone else cannot run the rootless variants.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

ROOTLESS_USER = "layerbench-rootless"
HOST_SETUP = "sudo scripts/host-setup.sh"
SUBID_FILES = ("/etc/subuid", "/etc/subgid")
TUN = "/dev/net/tun"


@dataclass(frozen=True)
class PodmanUser:
    """The account a podman command runs as, and the environment it gets."""

    rootless: bool
    name: str
    uid: int
    gid: int
    home: str

    @property
    def runtime_dir(self) -> str:
        """XDG_RUNTIME_DIR: Podman's per-user state (the run root, network namespaces)."""
        return f"/run/user/{self.uid}"

    @property
    def switch(self) -> bool:
        """True when the runner must become this user for each command (it is root, the user is not)."""
        return os.geteuid() != self.uid

    def env(self) -> dict[str, str]:
        """A clean environment: the runner's (root's DOCKER_HOST, HOME, ...) must not leak into the user's."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        if not self.rootless:
            return {**env, "HOME": os.environ.get("HOME", "/root")}
        return {**env, "HOME": self.home, "USER": self.name, "LOGNAME": self.name,
                "XDG_RUNTIME_DIR": self.runtime_dir}

    def ensure_runtime_dir(self) -> None:
        """Make XDG_RUNTIME_DIR (0700, the user's own) when it is missing: no login session made it."""
        if not self.rootless:
            return
        path = Path(self.runtime_dir)
        if path.is_dir():
            return
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)


ROOT = PodmanUser(rootless=False, name="root", uid=0, gid=0, home="/root")


def rootless_user() -> PodmanUser | None:
    """The dedicated rootless user, or None when it does not exist here."""
    try:
        entry = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        return None
    return PodmanUser(rootless=True, name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)


def subid_range(name: str, path: str) -> tuple[int, int] | None:
    """(first, count) of the user's subordinate ids in /etc/subuid or /etc/subgid, or None."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] == name and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
    return None


def rootless_unavailable_reason() -> str | None:
    """None when rootless Podman can run here as the dedicated user; else why not and the fix."""
    user = rootless_user()
    if user is None:
        return f"the rootless user {ROOTLESS_USER} does not exist; {HOST_SETUP} creates it with its subuid and " \
               f"subgid ranges"
    if os.geteuid() not in (0, user.uid):
        return f"rootless Podman runs as {ROOTLESS_USER}: run bench as root (it switches to that user for each " \
               f"podman command) or as {ROOTLESS_USER}"
    for path in SUBID_FILES:
        if subid_range(user.name, path) is None:
            return f"{ROOTLESS_USER} has no range in {path}; {HOST_SETUP} adds one"
    if not all(os.access(f"/usr/bin/{tool}", os.X_OK) for tool in ("newuidmap", "newgidmap")):
        return "newuidmap/newgidmap are missing: apt-get install uidmap (or run " + HOST_SETUP + ")"
    if not _open_to_others(TUN):
        return f"{TUN} is not open to unprivileged users here, so slirp4netns cannot make the container's " \
               f"network; {HOST_SETUP} makes it 0666, as udev does on a stock Debian"
    return None


def _open_to_others(device: str) -> bool:
    try:
        return os.stat(device).st_mode & 0o006 == 0o006
    except OSError:
        return False


def unavailable_reason(rootless: bool, podman_found: bool) -> str | None:
    """Why this Podman variant cannot run here (None: it can), with the fix."""
    if not podman_found:
        return f"Podman is not installed: apt-get install podman slirp4netns uidmap (or run {HOST_SETUP})"
    if rootless:
        return rootless_unavailable_reason()
    if os.geteuid() != 0:
        return "rootful Podman needs root: run bench as root (sudo), or use rootless: true"
    return None
