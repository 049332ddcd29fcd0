"""Where a container's /tmp lives (scratch: volume or bind), against real Docker and Podman: the
app's /tmp is the host filesystem the explanation names (not a tmpfs, not overlayfs), the root
stays read-only, /io works as the app's user, and the volume or folder goes with the container.
And what `bench clean` does after a runner was killed with a Podman container running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup, storage
from tests.app_requests import get_ok as get
from tests.conftest import require
from tests.integration.podman_checks import assert_nothing_left, containers_of, podman_or_skip, volumes_of

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.xdist_group("podman")]
RUN_ID = f"test-storage-{os.getpid()}"
BENCH = str(Path(sys.executable).with_name("bench"))
ENGINES = {"docker": {}, "podman": {"engine": "podman"}, "podman-rootless": {"engine": "podman", "rootless": True}}


def _mount_of(pid: int, target: str) -> list[str]:
    """The mount at target in that process's mount namespace: [source, mount point, type, options]."""
    for line in Path(f"/proc/{pid}/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == target:
            return fields[:4]
    return []


def _docker_volumes(run_id: str) -> list[str]:
    listed = subprocess.run(["docker", "volume", "ls", "--quiet", "--filter", f"label=layerbench.run={run_id}"],
                            capture_output=True, text=True, timeout=30, check=True)
    return listed.stdout.split()


@pytest.mark.parametrize("kind", ["volume", "bind"])
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_volume_or_bind_mount_is_the_apps_tmp_and_goes_with_its_container(engine, kind):
    require(ContainerSetup.check() is None, f"Docker: {ContainerSetup.check()}")
    if engine != "docker":
        podman_or_skip(rootless=engine == "podman-rootless")
    setup = ContainerSetup({**ENGINES[engine], "network": "host", "scratch": kind}, Pinning.default(), RUN_ID, "/tmp")
    setup.prepare()
    with setup.running() as instance:
        assert json.loads(get(instance.port, "/io?kb=64"))["read"] == 64 * 1024  # as uid 65534
        pid = instance.facts["init_pid"]
        source, _, fs_type, options = _mount_of(pid, "/tmp")
        assert fs_type not in ("tmpfs", "overlay"), _mount_of(pid, "/tmp")
        assert _mount_of(pid, "/")[2] == "overlay" and _mount_of(pid, "/")[3].startswith("ro")  # root stays read-only
        assert storage.filesystem_of("/tmp").startswith(fs_type)  # the host filesystem the words name
        explanation = setup.explain()
        assert ("named volume" if kind == "volume" else "bind mount") in explanation
        assert f"{fs_type} on {source}" in explanation
        folder = instance.handle.scratch.directory
        volume = instance.handle.scratch.volume
        assert (folder is not None) == (kind == "bind") and (volume is not None) == (kind == "volume")
    assert folder is None or not folder.exists()
    if engine == "docker":
        assert _docker_volumes(RUN_ID) == []
    else:
        assert volumes_of(engine == "podman-rootless", RUN_ID) == []


@pytest.mark.podman
@pytest.mark.timeout(180)
def test_bench_clean_after_a_killed_runner_removes_the_rootless_container_its_helpers_and_volume(tmp_path, sole_cleaner):
    podman_or_skip(rootless=True)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("name: podman-killed\nsetups:\n  - container: {engine: podman, rootless: true, scratch: volume}\n"
                        "workloads:\n  - {name: hello, endpoint: hello, connections: 2, duration: 20, warmup: 0.2}\n"
                        "repeat: 1\n")
    out = tmp_path / "results"
    bench = subprocess.Popen([BENCH, "run", str(scenario), "--out", str(out), "--no-report"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        give_up = time.monotonic() + 60
        while not (out.exists() and any(out.iterdir()) and containers_of(True, next(out.iterdir()).name)):
            assert time.monotonic() < give_up and bench.poll() is None, "the run never started its container"
            time.sleep(0.2)
        time.sleep(1.0)  # under load
        os.kill(bench.pid, signal.SIGKILL)
        bench.wait(timeout=10)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    run_id = next(out.iterdir()).name
    assert containers_of(True, run_id) and volumes_of(True, run_id)  # a SIGKILL cannot clean up
    listed = subprocess.run([BENCH, "clean"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"})
    assert listed.returncode == 0, listed.stderr
    assert "rootless Podman (layerbench-rootless): container layerbench-" in listed.stdout, listed.stdout
    assert_nothing_left(run_id)
