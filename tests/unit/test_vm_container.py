"""The container inside the VM as declared data, and its start-up phases from the guest's console markers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from bench.images.guest_runtime import MARKER_CGROUP, MARKER_CREATE, MARKER_START
from bench.images.initramfs import MARKER_APP, MARKER_INIT
from bench.setups import registry
from bench.setups.base import Instance, Pinning
from bench.setups.vm import VMSetup
from bench.setups.vm.phases import split_phases

NAME = "container-in-vm"


def _setup(options: dict):
    return registry.get(NAME)(options, Pinning((1,), (0,)), "test-vmc", workdir="/tmp")


def test_the_runtime_inside_the_guest_is_the_variant_and_a_box_of_its_stack():
    runc, crun = _setup({"accel": "tcg"}), _setup({"accel": "tcg", "runtime": "crun"})
    assert (runc.variant(), crun.variant()) == ("tcg,runc", "tcg,crun")
    guest = SimpleNamespace(root="/nonexistent", argv=["app"], env={}, uid=65534, gid=65534, workdir="/tmp",
                            drops_own_privileges=False)
    assert VMSetup._guest_boot(runc, guest) == (guest, {})  # the VM alone boots the app's own start
    runc._accel = "tcg"  # what prepare() decides
    described = runc.describe()
    assert described["stack_layers"][-2].startswith("container engine (runc in the guest")
    assert described["stack_layers"][3] == "guest kernel" and described["stack_layers"][2].startswith("emulator")
    assert "namespaces" in described["stack"] and "TCG" in described["explanation"]
    assert described["explanation"].count("The same VM") == 1  # the VM's accel words follow, not its text twice
    with pytest.raises(ValidationError):
        _setup({"runtime": "runsc"})  # gVisor inside the guest is not offered


def test_only_the_vm_setup_reports_leftover_qemus():
    assert registry.get(NAME).find_leftovers() == [] and registry.get(NAME).clean_leftovers() == []


def _instance(marks: dict[str, float], first_200_s: float) -> Instance:
    serial = SimpleNamespace(marks=marks, guest_uptime_s={MARKER_INIT: 1.5, MARKER_APP: 9.0},
                             wait_for=lambda marker, deadline_s, popen: marker in marks)
    handle = SimpleNamespace(serial=serial, popen=None, spawned_at=10.0)
    return Instance(port=1, processes=list, phases={"launch_s": 0.02, "first_200_s": first_200_s}, handle=handle)


def test_start_up_splits_at_the_runtimes_create_and_start():
    steps = (("init_to_runtime_s", MARKER_CGROUP), ("runtime_create_s", MARKER_CREATE),
             ("runtime_start_s", MARKER_START), ("start_to_app_s", MARKER_APP))
    marks = {MARKER_INIT: 12.0, MARKER_CGROUP: 13.0, MARKER_CREATE: 16.0, MARKER_START: 17.0, MARKER_APP: 20.0}
    instance = _instance(marks, first_200_s=10.5)  # polling began at spawn + launch; answered 0.5 s after the app
    split_phases(instance, steps)
    assert instance.phases == pytest.approx({"launch_s": 0.02, "kernel_to_init_s": 2.0, "init_to_runtime_s": 1.0,
                                             "runtime_create_s": 3.0, "runtime_start_s": 1.0, "start_to_app_s": 3.0,
                                             "first_200_s": 0.5})
    assert list(instance.phases)[-1] == "first_200_s"  # phases are ordered: the last is the port answering
    assert instance.facts["guest_uptime_at_app_s"] == 9.0


def test_a_missing_marker_keeps_the_unsplit_figure():
    instance = _instance({MARKER_INIT: 12.0, MARKER_APP: 20.0}, first_200_s=10.5)
    split_phases(instance, (("runtime_create_s", MARKER_CREATE), ("start_to_app_s", MARKER_APP)))
    assert instance.phases == {"launch_s": 0.02, "first_200_s": 10.5}
    split_phases(instance)  # the VM alone: init to app
    assert instance.phases == pytest.approx({"launch_s": 0.02, "kernel_to_init_s": 2.0, "init_to_app_s": 8.0,
                                             "first_200_s": 0.5})
