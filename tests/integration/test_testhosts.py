"""Test hosts against the real thing: containers with sshd (and their own dockerd) made on this
machine, reached with the system's OpenSSH client, and nothing left behind, also after Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import require
from tests.testhost_image import apt_mirror, image_size_bytes, image_tag
from tests.testhosts import LabError, clean_leftovers, leftovers, start_hosts

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.xdist_group("testhosts")]  # one build of the hosts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _pieces():
    """Docker and an ssh client must exist; the image must be cached or buildable (root, debootstrap)."""
    require(shutil.which("ssh") is not None, "the OpenSSH client is missing (apt-get install openssh-client)")
    daemon = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    require(bool(daemon), "no Docker daemon answers (run: scripts/host-setup.sh)")
    if image_size_bytes(image_tag()) is None:
        require(os.geteuid() == 0, "building the test-host image needs root")
        require(shutil.which("debootstrap") is not None, "debootstrap is missing (apt-get install debootstrap)")


def _master_processes(keydir: Path) -> list[str]:
    """ssh master connections still running for this session (they would outlive it by ControlPersist)."""
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if str(keydir) in line and "ps -eo" not in line]


def test_two_hosts_answer_ssh_and_leave_nothing():
    began = time.perf_counter()
    with start_hosts(2) as hosts:
        started_s = time.perf_counter() - began
        config = hosts[0].ssh_config
        assert [host.name for host in hosts] == ["lab1", "lab2"]
        assert subprocess.run(["ssh", "-F", str(config), "lab1", "true"], stdin=subprocess.DEVNULL).returncode == 0
        assert hosts[1].ssh("hostname").stdout.strip() == "lab2"
        # The hosts reach each other on their own network (what a split run's load needs).
        reach = hosts[0].ssh(f"python3 -c \"import socket; socket.create_connection(('{hosts[1].address}', 22), 5)\"",
                             check=False)
        assert reach.returncode == 0, reach.stderr
        assert hosts[0].ssh("id -un").stdout.strip() == "lab"
        # Offline, like the hosts a fleet run must install on: the apt mirror this machine reaches is
        # out of a host's reach (an --internal network has no way out).
        mirror = socket.gethostbyname(urllib.parse.urlsplit(apt_mirror()).hostname)
        out = hosts[0].ssh(f"python3 -c \"import socket; socket.create_connection(('{mirror}', 80), 3)\"", check=False)
        assert out.returncode != 0 and "Error" in out.stderr, out
        session, keydir = hosts[0].session, config.parent
        assert leftovers(session), "the session's resources should carry the label while it runs"
    print(f"\ntwo hosts ready in {started_s:.1f} s (image cached: {image_tag()})")
    assert leftovers(session) == []
    assert not keydir.exists()
    assert _master_processes(keydir) == []


def test_a_host_with_its_own_engine_runs_an_imported_image():
    with start_hosts(1, docker=True) as hosts:
        host = hosts[0]
        assert host.ssh("docker info --format '{{.Driver}}'").stdout.strip() == "overlay2"
        # A FROM-scratch image as layerbench builds it: a rootfs tarball, docker import, no registry.
        script = ("set -e; d=$(mktemp -d); mkdir -p $d/lib64 $d/lib/x86_64-linux-gnu; cp /usr/bin/echo $d/; "
                  "cp /lib64/ld-linux-x86-64.so.2 $d/lib64/; cp /lib/x86_64-linux-gnu/libc.so.6 $d/lib/x86_64-linux-gnu/; "
                  "tar -C $d -c . | docker import - scratch-echo:1 >/dev/null; "
                  "docker run --rm --user 65534 scratch-echo:1 /echo inner-ok")
        assert host.ssh(script).stdout.strip() == "inner-ok"
        session = host.session
    assert leftovers(session) == []


def _up_one_host(process: subprocess.Popen) -> tuple[str, list[str]]:
    """Read `python -m tests.testhosts up 1` until it is ready; its session and its lines so far."""
    session, lines = None, []
    for line in process.stdout:
        lines.append(line.rstrip())
        if line.startswith("session "):
            session = line.split()[1].rstrip(":")
        if line.startswith(("ready:", "error:")):
            break
    assert session and lines[-1].startswith("ready:"), lines
    return session, lines


def _up_command() -> list[str]:
    return [sys.executable, "-m", "tests.testhosts", "up", "1"]


def test_ctrl_c_while_up_removes_everything():
    with subprocess.Popen(_up_command(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        try:
            session, lines = _up_one_host(process)
            assert leftovers(session)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 130, lines + process.stdout.read().splitlines()
        finally:
            if process.poll() is None:  # a failed assertion must not leave the hosts up
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
    assert leftovers(session) == []


def test_clean_removes_what_a_killed_owner_left():
    with subprocess.Popen(_up_command(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        try:
            session, _ = _up_one_host(process)
        finally:
            process.kill()  # SIGKILL: no cleanup of its own
            process.wait(timeout=60)
    keydirs = list(Path(tempfile.gettempdir()).glob(f"{session}-*"))
    assert leftovers(session) and keydirs, "a SIGKILLed owner leaves its hosts and keys behind"
    removed = clean_leftovers()
    assert any(session in line for line in removed), removed
    assert leftovers(session) == []
    assert not any(keydir.exists() for keydir in keydirs)


def test_an_engine_without_its_capabilities_fails_in_one_line(monkeypatch):
    import tests.testhosts as testhosts

    # Without SYS_ADMIN the host cannot remount its cgroups for dockerd: its entry point exits.
    monkeypatch.setattr(testhosts, "DOCKERD_FLAGS", ())
    before = set(leftovers())
    with pytest.raises(LabError, match="lab1 not reachable over ssh") as failure:
        with start_hosts(1, docker=True) as hosts:
            pytest.fail(f"{hosts[0].name} started without the capabilities its dockerd needs")
    print(f"\n{failure.value}")
    assert "\n" not in str(failure.value)
    assert set(leftovers()) <= before
