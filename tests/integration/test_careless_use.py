"""Careless use against the real engines: a user's image that is not here is one line
before anything starts, and a runner killed with SIGKILL in the middle of the real KVM probe leaves
nothing once `bench clean` has run. Both go through the real command line in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration.test_faults import docker_or_skip, qemus_of, vm_or_skip, wait_for

pytestmark = pytest.mark.integration

# A bench run whose VM probes KVM now: the probe's answer remembered on disk (shared by every run on
# this machine) is neither read nor written, so the test neither skips the probe nor changes the cache.
PROBING_RUN = """
import sys
import bench.setups.vm.accel as accel
accel._remembered_probe = lambda key: None
accel._remember_probe = lambda key, answer: None
from bench.cli import main
sys.argv = ["bench", "run", "--setups", "vm", "--workloads", "hello", "--duration", "1", "--repeat", "1",
            "--accel", "auto", "--no-report", "--out", sys.argv[1]]
main()
"""


def _bench(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd)


@pytest.mark.docker
def test_a_user_image_that_is_not_here_is_one_line_and_nothing_is_stored(tmp_path):
    docker_or_skip()
    scenario = tmp_path / "nope.yaml"
    scenario.write_text('name: nope\napp: {image: "layerbench-test/does-not-exist:1", port: 8080, path: /}\n'
                        'setups: [bare, container]\nworkloads: [hello]\n')
    done = _bench("run", str(scenario), "--out", str(tmp_path / "results"), "--no-report")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr.splitlines() == [
        "error: image layerbench-test/does-not-exist:1 is not present locally and layerbench never pulls: build it "
        "or `docker load` it first (docker image ls lists what is here)"]
    assert not (tmp_path / "results").exists()


@pytest.mark.qemu
@pytest.mark.timeout(600)
def test_a_runner_killed_during_the_kvm_probe_leaves_nothing_after_bench_clean(tmp_path, sole_cleaner):
    vm_or_skip()
    require(os.access("/dev/kvm", os.R_OK | os.W_OK), "no usable /dev/kvm: no KVM probe to interrupt")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    runner = subprocess.Popen([sys.executable, "-c", PROBING_RUN, str(tmp_path / "results")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
    try:  # building the guest's files may come first (once per source change): minutes, not seconds
        probe = wait_for(lambda: list(scratch.glob("layerbench-kvm-probe-*")), 480, "the KVM probe's folder")
        wait_for(lambda: qemus_of(runner.pid), 10, "the probe's QEMU")
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    assert probe[0].exists()  # SIGKILL: no `finally` of the runner ran
    wait_for(lambda: not qemus_of(runner.pid), 10, "the probe's QEMU to die with its runner")
    cleaned = _bench("clean", env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"removed stale folder {probe[0]}" in cleaned.stdout.splitlines()
    assert list(scratch.iterdir()) == []
