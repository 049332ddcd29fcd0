"""A container inside the VM against real QEMU: the guest boots with runc inside, runs the app in
the guest's namespaces and cgroups, reports the runtime's create and start, and leaves nothing behind."""

from __future__ import annotations

import os
import platform
import shutil

import psutil
import pytest

from bench.images import guest_runtime
from bench.images.kernel import kernel_status
from bench.results import load_run
from bench.runner import run_scenario
from bench.scenario import parse_scenario
from bench.setups import registry
from bench.setups.vm.qemu import NAME_PREFIX
from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.qemu]


def _our_qemus() -> list[int]:
    return [process.pid for process in psutil.process_iter(["cmdline"])
            if any(arg.startswith(f"{NAME_PREFIX}{os.getpid()}-") for arg in process.info.get("cmdline") or [])]


def test_runc_in_the_guest_runs_the_app_in_its_own_namespaces(tmp_path):
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    status = kernel_status()
    require(not status.startswith("no guest kernel") or "will be fetched" in status, status)
    require(guest_runtime.find_runtime("runc") is not None, "runc is not installed (apt-get install runc)")
    require(registry.get("container-in-vm").check() is None, str(registry.get("container-in-vm").check()))
    scenario = parse_scenario("""
name: vm-container-test
setups: [{container-in-vm: {runtime: runc, accel: tcg}}]
workloads: [{name: hello, endpoint: hello, connections: 2, duration: 1, warmup: 0.3}]
repeat: 1
""")
    record = load_run(run_scenario(scenario, tmp_path))
    (trial,) = record.trials
    assert trial.status == "ok", trial.error
    assert trial.variant == "tcg,runc" and trial.facts.container_runtime == "runc"
    phases = list(trial.startup_phases_s)
    assert phases[:2] == ["launch_s", "kernel_to_init_s"] and phases[-1] == "first_200_s"
    assert {"runtime_create_s", "runtime_start_s", "start_to_app_s"} <= set(phases)
    assert trial.startup_phases_s["runtime_create_s"] > 0
    # The app's own view: PID 1 of a new pid namespace, nobody, the container's hostname, the guest's kernel.
    assert (trial.inside.pid, trial.inside.uid, trial.inside.hostname) == (1, 65534, "layerbench")
    assert trial.inside.kernel != platform.release() and trial.load.requests > 0
    assert set(trial.roles) == {"hypervisor"} and not trial.fixed  # no engine daemon on the host
    layer = record.layers[0]
    assert layer.stack_layers[-2].startswith("container engine (runc in the guest")
    assert _our_qemus() == []
