"""The container's runtime variants (runc, crun, gVisor's runsc) as declared data, gVisor's processes by
role, and the shims failed starts leave: no engine needed (real processes where processes matter)."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest
from pydantic import ValidationError

from bench.app.command import APP_SIGNATURE
from bench.roles import APP
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup, runtimes, shims
from bench.setups.container.attribution import SANDBOX, RunningContainer, processes

SYSTRAP = runtimes.RuntimeInfo("runsc", "/usr/local/lib/layerbench/runsc", ("--platform=systrap", "--network=host"),
                               "runsc_0.0~20240729.0-4+b7_amd64")


def _setup(options: dict) -> ContainerSetup:
    return ContainerSetup(options, Pinning((1,), (0,)), "test-runtimes", workdir="/tmp")


def test_gvisor_platform_and_network_are_read_from_the_registered_arguments():
    assert (SYSTRAP.platform, SYSTRAP.network, SYSTRAP.variant_part()) == ("systrap", "host", "runsc-systrap")
    netstack = runtimes.RuntimeInfo("runsc", "/usr/bin/runsc", ("--platform=ptrace",), "0.0~20221219.0")
    assert (netstack.network, netstack.variant_part()) == ("sandbox", "runsc-ptrace,netstack")
    crun = runtimes.RuntimeInfo("crun", "/usr/bin/crun", (), "crun version 1.8.1")
    assert (crun.platform, crun.variant_part()) == (None, "crun")
    assert runtimes.RuntimeInfo("runc", "runc", (), "runc version 1.1.5").variant_part() == ""
    assert SYSTRAP.facts()["gvisor_platform"] == "systrap" and SYSTRAP.facts()["runtime_release"].startswith("runsc_")


def test_the_runtime_is_part_of_the_variant_and_runc_keeps_the_old_labels():
    assert _setup({"network": "host"}).variant() == "host"  # runs stored before runtimes keep their variants
    assert _setup({"network": "bridge", "runtime": "crun"}).variant() == "bridge,crun"
    gvisor = _setup({"network": "host", "runtime": "runsc"})
    assert gvisor.variant() == "host,runsc"  # before prepare(): what was asked for
    gvisor._runtime = SYSTRAP  # what prepare() reads from docker info
    assert gvisor.variant() == "host,runsc-systrap"
    with pytest.raises(ValidationError):
        _setup({"runtime": "kata"})


def test_gvisor_declares_its_sandbox_its_path_and_why_it_costs():
    gvisor = _setup({"network": "host", "runtime": "runsc"})
    gvisor._runtime = SYSTRAP
    described = gvisor.describe()
    assert SANDBOX.key in described["roles"] and "gVisor sentry" in described["stack"]
    assert described["stack_layers"][-2].startswith("sandbox kernel") and described["stack_layers"][-1] == "app"
    assert "every system call" in described["explanation"].lower() and "systrap" in described["explanation"]
    assert described["fixed_roles"] == ["dockerd", "containerd"]
    assert any("--network=host" in caveat for caveat in described["caveats"])
    runc = _setup({"network": "bridge"}).describe()
    assert SANDBOX.key not in runc["roles"] and not runc["caveats"]
    assert "docker-proxy" in runc["stack_layers"][2] and "sandbox kernel" not in " ".join(runc["stack_layers"])


def test_a_runtime_failure_gives_the_engines_words_and_the_fix():
    crun = ("failed to create shim task: OCI runtime create failed: cgroups in hybrid mode not supported, drop all "
            "controllers from cgroupv2: unknown")
    line = runtimes.cannot_run("crun", crun)
    assert crun in line and "cgroup" in line.split("fix:")[1] and "container-in-vm" in line
    netstack = "cannot run with network enabled in root network namespace: unknown"
    assert "--network=host" in runtimes.fix_for(netstack)
    assert "host-setup.sh" in runtimes.fix_for("something nobody has seen")
    assert "\n" not in runtimes.cannot_run("runsc", "two\nlines")


@pytest.fixture
def named_processes():
    """Real processes whose argv[0] are gVisor's (the process name stays `sleep`), and a plain one."""
    started = [subprocess.Popen([argv0, "30"], executable="/bin/sleep")
               for argv0 in ("runsc-sandbox", "runsc-gofer", "stub")]
    yield started
    for popen in started:
        popen.kill()
        popen.wait()


def test_gvisors_sentry_and_gofer_are_the_sandbox_and_its_stubs_the_app(named_processes, tmp_path):
    (tmp_path / "cgroup.procs").write_text("".join(f"{popen.pid}\n" for popen in named_processes))
    running = RunningContainer(container=SimpleNamespace(id="0" * 64), init_pid=named_processes[0].pid,
                               cgroup_dirs={"memory": tmp_path}, proxy_port=None)
    roles = {role_process.process.pid: role_process.role for role_process in processes(running)}
    sentry, gofer, stub = (popen.pid for popen in named_processes)
    assert roles[sentry] == roles[gofer] == SANDBOX.key and roles[stub] == APP.key


def test_a_shim_record_says_whose_it_is():
    shim = shims.Shim(pid=1, container_id="ab" * 32, address=shims.DEFAULT_ADDRESS, age_s=20.0,
                      args=["/usr/local/bin/python3.11", "-c", f"import sys; {APP_SIGNATURE}"],
                      env=["PATH=/bin", f"{shims.RUN_ENV}=20261129-120000-layers-00042"])
    assert shim.ours and shim.run_id == "20261129-120000-layers-00042"
    stranger = shims.Shim(pid=2, container_id="cd" * 32, address=shims.DEFAULT_ADDRESS, age_s=20.0,
                          args=["nginx", "-g", "daemon off;"])
    assert not stranger.ours and stranger.run_id is None
    assert shims._flags(["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "x", "-address", "/s"]) \
        == {"-namespace": "moby", "-id": "x", "-address": "/s"}


def test_a_young_shim_or_one_docker_knows_is_never_an_orphan():
    popen = subprocess.Popen(["/usr/bin/containerd-shim-runc-v2", "-c", "import time; time.sleep(30)", "-namespace",
                              "moby", "-id", "young"], executable=sys.executable)
    try:
        time.sleep(0.2)
        assert psutil.Process(popen.pid).cmdline()[0].endswith("containerd-shim-runc-v2")
        assert [s.container_id for s in shims.shims(0.0, lambda found: found == "young")] == ["young"]
        assert shims.shims(3600.0, lambda found: found == "young") == []  # a minute-old shim may be starting
        assert "young" not in {shim.container_id for shim in shims.orphans({"young"}, 0.0)}  # Docker knows it
    finally:
        popen.kill()
        popen.wait()
