"""Security defaults, checked against the real engines: a locked-down container that publishes on
loopback only, a VM whose port forward binds loopback only, a load generator that can only target
loopback."""

from __future__ import annotations

import inspect
import os

import psutil
import pytest

from bench.load import builtin, wrk
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup
from tests.conftest import require

pytestmark = pytest.mark.integration


def _listening_ips(pids: list[int], port: int) -> set[str]:
    return {conn.laddr.ip for conn in psutil.net_connections("inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid in pids}


@pytest.mark.docker
@pytest.mark.parametrize("network", ["bridge", "host"])
def test_the_container_is_locked_down_and_published_on_loopback_only(tmp_path, network):
    require(ContainerSetup.check() is None, f"container setup unavailable: {ContainerSetup.check()}")
    setup = ContainerSetup({"network": network}, Pinning.default(), f"sec-{os.getpid()}", tmp_path)
    setup.prepare()
    with setup.running() as instance:
        container = instance.handle.container
        container.reload()
        attrs = container.attrs
        inside = __import__("bench.runner.measure", fromlist=["get_stats"]).get_stats(instance)
        listeners = _listening_ips([rp.process.pid for rp in instance.processes()], instance.port)
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == "65534:65534" and inside["uid"] == 65534  # non-root, seen from inside
    assert not host["CapAdd"] and host["CapDrop"] == ["ALL"]
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert "no-new-privileges" in host["SecurityOpt"]
    if network == "bridge":
        bindings = [binding for per_port in host["PortBindings"].values() for binding in per_port]
        assert bindings and all(binding["HostIp"] == "127.0.0.1" for binding in bindings), bindings
        assert listeners <= {"127.0.0.1"}  # docker-proxy, when it is the listener
    else:
        assert listeners == {"127.0.0.1"}  # the app itself, in the host's network namespace


@pytest.mark.qemu
def test_the_vm_forwards_its_port_on_loopback_only(tmp_path):
    from bench.setups.vm import VMSetup

    require(VMSetup.check() is None, f"vm setup unavailable: {VMSetup.check()}")
    setup = VMSetup({"accel": "tcg"}, Pinning.default(), f"sec-{os.getpid()}", tmp_path)
    with setup.running() as instance:
        (qemu,) = [rp.process for rp in instance.processes()]
        cmdline = qemu.cmdline()
        listeners = _listening_ips([qemu.pid], instance.port)
    forwards = [arg for arg in cmdline if "hostfwd=" in arg]
    assert forwards and all(f"hostfwd=tcp:127.0.0.1:{instance.port}-:" in arg for arg in forwards), forwards
    assert listeners == {"127.0.0.1"}


def test_the_load_generators_take_a_port_not_a_host():
    # No API to aim them elsewhere: they take a port and always connect to the loopback address.
    assert list(inspect.signature(builtin.run_load).parameters) == ["port", "spec"]
    assert "port" in inspect.signature(wrk.run_wrk).parameters
    assert not {"host", "address", "url"} & set(inspect.signature(wrk.run_wrk).parameters)
    assert builtin.LOOPBACK == "127.0.0.1"


def test_the_builtin_load_generator_connects_to_loopback_only(app_server, monkeypatch):
    import asyncio

    seen = []

    class SpyLoop(asyncio.SelectorEventLoop):
        async def create_connection(self, protocol_factory, host=None, port=None, **kwargs):
            seen.append(host)
            return await super().create_connection(protocol_factory, host, port, **kwargs)

    monkeypatch.setattr(builtin, "_event_loop_factory", lambda: SpyLoop)  # also stands in for uvloop
    result = builtin.run_load(app_server, builtin.LoadSpec(connections=2, duration_s=0.3, warmup_s=0.0))
    assert result.requests > 0 and set(seen) == {"127.0.0.1"}
