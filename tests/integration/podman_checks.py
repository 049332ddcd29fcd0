"""What the Podman integration tests check from outside layerbench: `podman ps -a` and `podman volume
ls` run by hand (as root, and as the rootless user through `su -l`, as a person would), and the
helper processes a container may leave (conmon, slirp4netns, rootlessport, pasta)."""

from __future__ import annotations

import json
import subprocess

import psutil
import pytest

from bench.setups.container import ContainerSetup
from bench.setups.container.podman.cli import podman_path
from bench.setups.container.podman.user import ROOTLESS_USER, rootless_user, unavailable_reason
from tests.conftest import require

HELPERS = ("conmon", "slirp4netns", "rootlessport", "pasta")
VARIANTS = {
    "rootful-bridge": {"engine": "podman", "network": "bridge"},
    "rootful-host": {"engine": "podman", "network": "host"},
    "rootless-bridge": {"engine": "podman", "rootless": True, "network": "bridge"},
    "rootless-host": {"engine": "podman", "rootless": True, "network": "host"},
    "rootless-slirp4netns-ports": {"engine": "podman", "rootless": True, "port_handler": "slirp4netns"},
}
podman_group = [pytest.mark.integration, pytest.mark.docker, pytest.mark.podman,
                pytest.mark.xdist_group("podman")]  # one worker: "no helper left" looks at the whole user


def podman_or_skip(rootless: bool) -> None:
    require(ContainerSetup.check() is None, f"Docker (the image comes from it): {ContainerSetup.check()}")
    reason = unavailable_reason(rootless, podman_path() is not None)
    require(reason is None, f"{'rootless' if rootless else 'rootful'} Podman: {reason}")


def podman_as(rootless: bool, *args: str) -> str:
    """`podman args` by hand: as root, or as the rootless user in a login shell (`su -l`)."""
    if rootless:
        command = ["su", "-s", "/bin/sh", "-l", ROOTLESS_USER, "-c",
                   " ".join(["podman", *(f"'{arg}'" for arg in args)])]
    else:
        command = ["podman", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout


def containers_of(rootless: bool, run_id: str | None = None) -> list[str]:
    """Names of the containers `podman ps -a` lists (only run_id's, when given)."""
    filters = ["--filter", f"label=layerbench.run={run_id}"] if run_id else []
    return [(entry.get("Names") or ["?"])[0] for entry in
            json.loads(podman_as(rootless, "ps", "--all", *filters, "--format", "json") or "[]")]


def volumes_of(rootless: bool, run_id: str) -> list[str]:
    listed = json.loads(podman_as(rootless, "volume", "ls", "--filter", f"label=layerbench.run={run_id}",
                                  "--format", "json") or "[]")
    return [entry["Name"] for entry in listed]


def helpers_left(run_id: str) -> list[str]:
    """Live (not zombie) helpers of the rootless user, and root's conmons of this run's containers."""
    user = rootless_user()
    found = []
    for process in psutil.process_iter(["name", "uids", "cmdline", "status"]):
        if process.info["name"] not in HELPERS or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = process.info["cmdline"] or []
        theirs = user is not None and process.info["uids"] is not None and process.info["uids"].real == user.uid
        this_run = any(arg.startswith(f"layerbench-{run_id}-") for arg in cmdline)
        if theirs or this_run:
            found.append(f"{process.info['name']} {process.pid} {' '.join(cmdline)[:120]}")
    return found


def assert_nothing_left(run_id: str, rootless_too: bool = True) -> None:
    """No container or volume of the run for root or the rootless user, and no helper left."""
    from tests.integration.test_faults import wait_for

    for rootless in (False, True) if rootless_too else (False,):
        if unavailable_reason(rootless, podman_path() is not None) is None:
            assert containers_of(rootless, run_id) == [], f"containers left ({'rootless' if rootless else 'root'})"
            assert volumes_of(rootless, run_id) == [], f"volumes left ({'rootless' if rootless else 'root'})"
    # podman rm ends them; init reaps them (this host's init reaps late: zombies do not count)
    wait_for(lambda: not helpers_left(run_id), 10, f"helpers to exit: {helpers_left(run_id)}")
