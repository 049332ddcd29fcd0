"""bench.roles holds generic roles; the setup that has one names the program that plays it, and runs
store that name (so a run of today labels its processes as runs always have)."""

from __future__ import annotations

from bench.roles import HYPERVISOR, PROXY
from bench.setups import registry


def _declared(setup: str) -> dict[str, str]:
    return {role.key: role.label for role in registry.get(setup).roles}


def test_the_container_setup_says_its_proxy_is_docker_proxy():
    assert "docker" not in PROXY.label
    assert _declared("container")[PROXY.key] == "docker-proxy (published port)"


def test_the_vm_setups_say_their_hypervisor_process_is_qemu():
    assert "qemu" not in HYPERVISOR.label.lower()
    assert _declared("vm")[HYPERVISOR.key] == _declared("container-in-vm")[HYPERVISOR.key] == "QEMU (guest + devices)"
