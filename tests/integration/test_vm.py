"""The VM setup against real QEMU: boot under TCG once per module, talk to the app in the guest."""

from __future__ import annotations

import http.client
import json
import os
import shutil

import psutil
import pytest

from bench.images.kernel import kernel_status
from bench.setups import get
from bench.errors import SetupError
from bench.roles import ROLE_HYPERVISOR
from bench.setups.base import Pinning
from bench.setups.vm import VMSetup
from bench.setups.vm.accel import choose_accel, probe_kvm_boot
from bench.setups.vm.qemu import NAME_PREFIX
from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.qemu, pytest.mark.xdist_group("vm")]  # one boot for the module


def _our_qemus() -> list[psutil.Process]:
    """QEMUs started by this test process (their -name carries our pid)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if any(arg.startswith(f"{NAME_PREFIX}{os.getpid()}-") for arg in cmdline):
            found.append(process)
    return found


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def vm_setup(tmp_path_factory):
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    status = kernel_status()
    require(not status.startswith("no guest kernel") or "will be fetched" in status, status)
    require(VMSetup.check() is None, str(VMSetup.check()))
    setup = get("vm")({"accel": "tcg"}, Pinning.default(), "test-vm", tmp_path_factory.mktemp("vm"))
    setup.prepare()
    return setup


@pytest.fixture(scope="module")
def vm(vm_setup):
    with vm_setup.running() as instance:
        yield instance
    assert not _our_qemus(), "QEMU outlived the VM setup"


def test_variant_and_facts(vm_setup, vm):
    assert vm_setup.variant() == "tcg"
    facts = vm.facts
    assert facts["accel"] == "tcg" and facts["accel_reason"] == "requested"
    assert facts["kernel_version"] and facts["initramfs_bytes"] > 1_000_000
    assert facts["memory_mb"] == 256 and facts["machine"] in ("microvm", "q35")
    assert facts["initramfs_compression"] == ("lz4" if shutil.which("lz4") else "none")
    # release_boot_files is on by default: QEMU's copies of the vmlinux and the initramfs are paged out
    assert facts["boot_files_paged_out_bytes"] > 40e6
    assert os.path.isfile(facts["serial_log"])


def test_app_in_guest_answers(vm):
    status, body = _get(vm.port, "/hello")
    assert status == 200 and body
    status, body = _get(vm.port, "/cpu?n=1000")
    assert status == 200 and json.loads(body)["rounds"] == 1000


def test_stats_come_from_inside_the_guest(vm):
    status, body = _get(vm.port, "/stats")
    stats = json.loads(body)
    assert status == 200
    assert stats["ppid"] == 1  # the app is a child of the guest's init
    assert stats["uid"] != 0  # init dropped root for it
    assert stats["kernel"] != os.uname().release  # the guest kernel, not the host's


def test_phases_split_the_start_up(vm):
    phases = vm.phases
    assert list(phases) == ["launch_s", "kernel_to_init_s", "init_to_app_s", "first_200_s"]
    assert all(value >= 0 for value in phases.values())
    assert phases["kernel_to_init_s"] > 0.1 and phases["init_to_app_s"] > 0.05
    assert vm.startup_s < 60


def test_hypervisor_process_is_pinned(vm):
    (role_process,) = vm.processes()
    assert role_process.role == ROLE_HYPERVISOR
    qemu = role_process.process
    assert "qemu-system" in qemu.name()
    app_cpus = set(Pinning.default().app_cpus)
    for thread in qemu.threads():
        assert set(psutil.Process(thread.id).cpu_affinity()) == app_cpus
    assert qemu.memory_info().rss > 50e6


def test_default_vm_has_no_disk(vm):
    assert vm.facts["disk_mb"] == 0
    assert not any(line.startswith("layerbench: disk") for line in vm.handle.serial.lines)
    assert "-drive" not in psutil.Process(vm.facts["qemu_pid"]).cmdline()


def test_disk_variant_puts_the_guests_tmp_on_virtio_blk(vm_setup):
    from bench.images.initramfs import MARKER_DISK

    setup = get("vm")({"accel": "tcg", "disk": True}, Pinning.default(), "test-vm", vm_setup.workdir)
    setup.prepare()
    assert setup.variant() == "tcg,disk"
    with setup.running() as instance:
        qemu = instance.handle
        disk = qemu.temp_dir / "disk.raw"
        assert instance.facts["disk_mb"] == 256 and disk.stat().st_size == 256 * 1024 * 1024
        # init printed its marker with the /proc/mounts line of /tmp: the virtio disk, as ext4
        (mounted,) = [line for line in qemu.serial.lines if line.startswith(MARKER_DISK)]
        assert " /dev/vda /tmp ext4 rw" in mounted
        assert qemu.serial.marks[MARKER_DISK] < qemu.serial.marks["layerbench: app listening"]
        # The app's fsync'ed temp file reaches the (sparse) image on the host: it grows by at least its size.
        blocks_before = disk.stat().st_blocks
        status, body = _get(instance.port, "/io?kb=64")
        assert status == 200 and json.loads(body)["read"] == 64 * 1024
        status, _ = _get(instance.port, "/io?kb=2048")
        assert status == 200
        assert (disk.stat().st_blocks - blocks_before) * 512 >= 2048 * 1024
        status, body = _get(instance.port, "/stats")
        assert status == 200 and json.loads(body)["uid"] != 0
    assert not qemu.temp_dir.exists()  # the disk went with the VM's temp dir
    assert not _our_qemus() or all(p.pid != qemu.popen.pid for p in _our_qemus())


def test_accel_decision_falls_back_to_tcg():
    assert choose_accel("tcg", lambda: pytest.fail("tcg must not probe")) == ("tcg", "requested")
    assert choose_accel("auto", lambda: (True, "")) == ("kvm", "kvm test boot reached init")
    accel, reason = choose_accel("auto", lambda: (False, "hung"))
    assert accel == "tcg" and "hung" in reason
    with pytest.raises(SetupError, match="hung"):
        choose_accel("kvm", lambda: (False, "hung"))


def test_kvm_probe_is_bounded_and_leaves_nothing(vm_setup):
    # A deadline no boot can meet: the probe must give up, say why, and stop its QEMU.
    before = {process.pid for process in _our_qemus()}  # the module's VM may be running
    ok, reason = probe_kvm_boot(vm_setup._plan, deadline_s=0.05)
    assert not ok and reason
    assert {process.pid for process in _our_qemus()} <= before


def test_unbootable_kernel_is_one_line_error(tmp_path):
    bogus = tmp_path / "vmlinuz"
    bogus.write_bytes(b"not a kernel")
    setup = VMSetup({"accel": "tcg", "kernel": str(bogus)}, Pinning.default(), "test-vm", tmp_path)
    with pytest.raises(SetupError, match="not a bzImage") as error:
        setup.prepare()
    assert "\n" not in str(error.value)


def test_options_are_bounded():
    with pytest.raises(ValueError):
        VMSetup({"memory_mb": 16}, Pinning.default(), "test-vm", "/tmp")
    with pytest.raises(ValueError):
        VMSetup({"accel": "hvf"}, Pinning.default(), "test-vm", "/tmp")


def test_terminate_is_idempotent_and_cleans_up(vm_setup):
    with vm_setup.running() as instance:
        qemu = instance.processes()[0].process
        temp_dir = instance.handle.temp_dir
    assert not qemu.is_running() or qemu.status() == psutil.STATUS_ZOMBIE
    assert not temp_dir.exists()
    vm_setup._terminate(instance)  # a second stop is a no-op
    assert qemu.pid not in {process.pid for process in _our_qemus()}


def test_qemu_killed_mid_run_is_reported(vm_setup):
    with pytest.raises(SetupError, match="killed by signal 9"):
        with vm_setup.running() as instance:
            instance.processes()[0].process.kill()
            instance.handle.popen.wait(timeout=10)


def test_port_taken_is_reported(vm_setup, monkeypatch):
    import socket

    from bench.setups import vm as vm_module

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        monkeypatch.setattr(vm_module, "free_port", lambda *address: squatter.getsockname()[1])
        monkeypatch.setattr(vm_module, "port_in_use", lambda port, *address: False)  # as if the race was lost
        with pytest.raises(SetupError, match="port taken") as error:
            with vm_setup.running():
                pass
    assert "\n" not in str(error.value)
