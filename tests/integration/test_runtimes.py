"""The container's runtimes against the real engine: a real gVisor (runsc) run through the runner,
crun measured or skipped with the engine's own reason, and a real leftover shim found and removed.
Skips where the engine or a runtime cannot be installed, except in CI (CI=true), where host-setup
installs and registers them and a missing one fails."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time

import psutil
import pytest

from bench.errors import SetupError
from bench.outputs.plots import render_all
from bench.results import load_run
from bench.runner import run_scenario
from bench.scenario import parse_scenario
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup, engine, runtimes, shims
from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.docker]

SANDBOX_ARGV0 = ("runsc-sandbox", "runsc-gofer")


def _registered() -> dict:
    require(ContainerSetup.check() is None, str(ContainerSetup.check()))
    with engine.client_if_daemon(10) as client:
        return runtimes.registered(client) if client is not None else {}


def _runtime_or_skip(name: str) -> None:
    require(name in _registered(), f"Docker has no {name} runtime registered (sudo scripts/host-setup.sh)")


def _gvisor_processes(container_ids: set[str]) -> list[int]:
    """runsc sentries and gofers still running for these containers (their bundle path names the id)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0] in SANDBOX_ARGV0 and any(cid in " ".join(cmdline) for cid in container_ids):
            found.append(process.pid)
    return found


def test_a_real_gvisor_run_is_measured_with_its_sandbox_and_the_engine_apart(tmp_path):
    _runtime_or_skip("runsc")
    scenario = parse_scenario("""
name: gvisor-test
setups: [bare, {container: {network: host, runtime: runsc}}]
workloads:
  - {name: hello, endpoint: hello, connections: 4, duration: 1, warmup: 0.3}
  - {name: idle, kind: idle, duration: 1, warmup: 0.2}
repeat: 1
""")
    run_dir = run_scenario(scenario, tmp_path)
    record = load_run(run_dir)
    assert not record.skipped and all(t.status == "ok" for t in record.trials), [t.error for t in record.trials]
    layer = next(layer for layer in record.layers if layer.setup == "container")
    assert layer.variant.startswith("host,runsc-") and "sandbox" in layer.roles
    assert layer.stack_layers[-2].startswith("sandbox kernel") and layer.fixed_roles == ["dockerd", "containerd"]
    assert "every system call" in layer.explanation.lower()
    hello = next(t for t in record.trials if t.setup == "container" and t.workload == "hello")
    assert {"app", "sandbox", "runtime"} <= set(hello.roles)  # stubs, sentry + gofer, shim
    assert hello.roles["sandbox"].processes == 2 and hello.roles["sandbox"].rss_bytes > 0
    assert set(hello.fixed) >= {"dockerd"} and "dockerd" not in hello.roles
    assert hello.facts.runtime == "runsc" and hello.facts.gvisor_platform == layer.variant.split("-", 1)[1]
    assert hello.inside.uid == 65534 and hello.inside.kernel != platform.release()  # gVisor's own kernel
    assert hello.load.requests > 0
    render_all(run_dir)
    assert "sandbox kernel" in (run_dir / "charts" / "layer_stack.svg").read_text()
    ids = {t.facts.container_id for t in record.trials if getattr(t.facts, "container_id", None)}
    assert ids and _gvisor_processes(ids) == []  # the sandboxes went with their containers
    with engine.client_if_daemon(10) as client:
        assert client.containers.list(all=True, filters={"label": f"{engine.RUN_LABEL}={record.run_id}"}) == []


def _engine_runs(runtime: str, image: str) -> tuple[bool, str]:
    """Ask the engine itself, through the docker CLI and not through layerbench: can `runtime` run
    a container of `image` here? (True, "") or (False, the most telling part of the daemon's error,
    e.g. "cgroups in hybrid mode not supported, drop all controllers from cgroupv2")."""
    done = subprocess.run(["docker", "run", "--rm", "--runtime", runtime, "--network", "none", "--user", "65534",
                           image, "true"], capture_output=True, text=True, timeout=120, check=False)
    daemon = next((line for line in done.stderr.splitlines() if "Error response from daemon:" in line), done.stderr)
    return done.returncode == 0, max(daemon.split(": "), key=len).strip()


def test_crun_runs_here_exactly_when_the_engine_runs_it(tmp_path):
    """The verdict comes from the engine, asked directly: where it can run crun the setup must run
    the app on it; where it cannot, the setup must refuse with the engine's own reason and a fix.
    (On this kind of host, cgroup v1 hybrid with Debian 12's crun 1.8, the engine cannot.)"""
    _runtime_or_skip("crun")
    image = ContainerSetup({"network": "host"}, Pinning.default(), f"test-crun-image-{os.getpid()}",
                           workdir=tmp_path)
    image.prepare()
    engine_ok, engine_words = _engine_runs("crun", image._image.tag)
    setup = ContainerSetup({"network": "host", "runtime": "crun"}, Pinning.default(), f"test-crun-{os.getpid()}",
                           workdir=tmp_path)
    if not engine_ok:
        with pytest.raises(SetupError) as refused:
            setup.prepare()
        words = str(refused.value)
        assert words.startswith("the crun runtime cannot start a container here: ") and "fix:" in words
        assert engine_words and engine_words in words, (engine_words, words)  # the engine's own reason, not ours
        return
    setup.prepare()  # the engine runs crun: so must the setup
    with setup.running() as instance:
        assert instance.facts["runtime"] == "crun"
    assert shims.shims(0.0, lambda found: found == instance.facts["container_id"]) == []


@pytest.fixture
def orphan_shim(tmp_path):
    """A real containerd shim in dockerd's namespace running the app, which Docker does not know:
    what a failed gVisor start leaves. Made with ctr; always removed."""
    require(shutil.which("ctr") is not None, "ctr (containerd's client) is not installed")
    _registered()
    from bench.images.initramfs import run_as
    from bench.images.rootfs import NOBODY_ID, build_rootfs

    rootfs = build_rootfs()
    container_id = f"layerbench-test-orphan-{os.getpid()}"
    run_id = f"test-orphan-{os.getpid()}"
    ctr = ["ctr", "--address", shims.DEFAULT_ADDRESS, "-n", shims.NAMESPACE]
    argv = run_as(rootfs.app_argv("127.0.0.1", 18999), NOBODY_ID)  # not root, even in its own namespaces
    started = subprocess.run([*ctr, "run", "-d", "--rootfs", "--read-only", "--env", f"{shims.RUN_ENV}={run_id}",
                              *(arg for key, value in rootfs.env.items() for arg in ("--env", f"{key}={value}")),
                              str(rootfs.path), container_id, *argv], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        yield container_id, run_id
    finally:
        for args in (["tasks", "kill", "-s", "SIGKILL", container_id], ["tasks", "delete", container_id],
                     ["containers", "delete", container_id]):
            subprocess.run([*ctr, *args], capture_output=True, timeout=30)


def test_a_leftover_shim_is_found_and_removed(orphan_shim, monkeypatch):
    container_id, run_id = orphan_shim
    monkeypatch.setattr(shims, "MIN_AGE_S", 0.0)  # it is seconds old; a real leftover is older than 10 s
    found = next(shim for shim in shims.shims(0.0, lambda found: found == container_id))
    assert found.ours and found.run_id == run_id and found.descendants
    assert any(container_id[:12] in line for line in ContainerSetup.find_leftovers())
    untouched = ContainerSetup.clean_leftovers("some-other-run")  # `bench clean --run X` keeps other runs' shims
    assert not any(container_id[:12] in line for line in untouched)
    removed = ContainerSetup.clean_leftovers(run_id)
    assert any(container_id[:12] in line for line in removed)
    time.sleep(0.5)
    assert not psutil.pid_exists(found.pid) and not any(psutil.pid_exists(pid) for pid in found.descendants)
    info = subprocess.run(["ctr", "--address", shims.DEFAULT_ADDRESS, "-n", shims.NAMESPACE, "containers", "info",
                           container_id], capture_output=True, text=True, timeout=30)
    assert info.returncode != 0  # containerd's record is gone too
    assert json.dumps(ContainerSetup.find_leftovers()).count(container_id[:12]) == 0
