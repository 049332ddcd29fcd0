"""What `bench doctor` says about Podman: its version, root's and the rootless user's stores, and
layerbench containers left in either (what `bench clean` would remove)."""

from __future__ import annotations

from bench.errors import SetupError
from bench.setups.container.podman import leftovers
from bench.setups.container.podman.cli import Podman, podman_path
from bench.setups.container.podman.user import ROOT, rootless_user, unavailable_reason


def doctor_lines() -> list[str]:
    """One line per Podman store: ok with its facts, or why that variant cannot run and the fix."""
    if podman_path() is None:
        return [unavailable_reason(rootless=False, podman_found=False) or ""]
    lines = []
    for rootless in (False, True):
        reason = unavailable_reason(rootless, podman_found=True)
        if reason is not None:
            lines.append(f"{'rootless' if rootless else 'rootful'} Podman: no: {reason}")
            continue
        podman = Podman(rootless_user() if rootless else ROOT)  # type: ignore[arg-type]
        try:
            lines.append(_store_line(podman))
        except SetupError as error:
            lines.append(f"{podman.who}: no: {error}")
    left = leftovers.find()
    if left:
        lines.append(f"Podman: {len(left)} container(s) of dead runs left ({'; '.join(left[:3])}): bench clean")
    return lines


def _store_line(podman: Podman) -> str:
    info = podman.info()
    host, store = info.get("host") or {}, info.get("store") or {}
    version = (info.get("version") or {}).get("Version", "?")
    words = [f"{podman.who} {version}: cgroup {host.get('cgroupVersion', '?')}",
             f"storage {store.get('graphDriverName', '?')} at {store.get('graphRoot', '?')}",
             f"network {host.get('networkBackend', '?')}"]
    if podman.user.rootless:
        slirp = (host.get("slirp4netns") or {}).get("version", "").splitlines()
        words.append(f"slirp4netns {slirp[0].split()[-1] if slirp else 'missing'}")
        if host.get("cgroupVersion") == "v1":
            words.append("no cgroup limits or cgroup accounting rootless on cgroup v1")
    return ", ".join(words)

