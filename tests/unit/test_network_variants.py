"""The container's network variants as declared data and checked rules: which options go together,
the only address a variant may load besides 127.0.0.1, the path each variant declares, and what a
killed run's private dockerd leaves for `bench clean`. No engine: real processes where they matter."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import psutil
import pytest
from pydantic import ValidationError

from bench.errors import SetupError
from bench.metrics.netpath import Inside, Interface, NetworkPath, loopback_path
from bench.setups.base import Instance, Pinning
from bench.setups.container import ContainerSetup, networking, private_engine, shims

DOCKER0 = ipaddress.ip_network("172.17.0.0/16")


def _setup(options: dict, address: str = "127.0.0.1") -> ContainerSetup:
    return ContainerSetup(options, Pinning((1,), (0,)), "test-network", workdir="/tmp", address=address)


def test_each_variant_has_its_name_and_options_that_do_not_go_together_are_refused():
    assert _setup({"network": "bridge"}).variant() == "bridge"  # Docker's default keeps its old label
    assert _setup({"network": "bridge", "userland_proxy": False}).variant() == "bridge,no-proxy"
    assert _setup({"network": "bridge", "reach": "container-ip"}).variant() == "bridge,container-ip"
    for wrong, words in (({"network": "host", "reach": "container-ip"}, "needs network: bridge"),
                         ({"network": "host", "userland_proxy": False}, "published port"),
                         ({"network": "bridge", "reach": "container-ip", "userland_proxy": False}, "published port"),
                         ({"network": "bridge", "userland_proxy": False, "runtime": "runsc"}, "runc only")):
        with pytest.raises(ValidationError, match=words):
            _setup(wrong)
    assert networking.options_problem("bridge", False, "published", "runc", engine="podman") is not None


def test_each_variant_explains_its_hops_and_the_stack_shows_them():
    proxy, direct, kernel = (_setup({"network": "bridge", **extra}) for extra in
                             ({}, {"reach": "container-ip"}, {"userland_proxy": False}))
    assert "docker-proxy" in proxy.explain() and "docker-proxy + NAT" in proxy.layer_stack()[2]
    assert "own address" in direct.explain() and "no NAT" in direct.layer_stack()[2]
    assert "DNAT" in kernel.explain() and "private dockerd" in kernel.explain()
    assert "kernel DNAT, no proxy" in kernel.layer_stack()[2]
    assert any("exception to loopback-only" in caveat for caveat in direct.caveats())


def test_the_direct_address_must_be_the_containers_on_a_local_bridge():
    good_route = {"dst": "172.17.0.2", "dev": "docker0", "prefsrc": "172.17.0.1"}
    assert networking.direct_problem("172.17.0.2", DOCKER0, "docker0", good_route, True) is None
    cases = [("127.0.0.1", good_route, True, "not a container"),
             ("10.1.2.3", good_route, True, "not in the bridge"),
             ("172.17.0.0", good_route, True, "not in the bridge"),
             ("172.17.0.2", {"dev": "eth0"}, True, "does not route"),
             ("172.17.0.2", None, True, "no route"),
             ("172.17.0.2", {**good_route, "gateway": "172.17.0.1"}, True, "through a gateway"),
             ("172.17.0.2", good_route, False, "not a bridge interface"),
             ("example.org", good_route, True, "not an IP address")]
    for address, route, bridge_exists, words in cases:
        assert words in networking.direct_problem(address, DOCKER0, "docker0", route, bridge_exists)


def test_a_split_run_refuses_the_variants_that_load_this_machine_only():
    for options in ({"network": "bridge", "reach": "container-ip"}, {"network": "bridge", "userland_proxy": False}):
        with pytest.raises(SetupError, match="not in a split run"):
            _setup(options, address="192.0.2.10").prepare()


@pytest.fixture
def no_namespaces(monkeypatch):
    """The container's veth found without entering its namespace: index 7, named veth7 (engine: vethE)."""
    monkeypatch.setattr(networking, "peer_index", lambda pid: 7)
    monkeypatch.setattr(networking, "interface_named", lambda index, netns_pid=None: "vethE" if netns_pid else "veth7")


def _shape(path: NetworkPath) -> list[tuple]:
    return [(type(step).__name__, getattr(step, "name", getattr(step, "role", "")),
             getattr(step, "netns", "")) for step in path.steps]


def test_each_variant_declares_the_hops_its_requests_cross_in_order(no_namespaces):
    proxy = networking.path_of("bridge", True, "published", 42, "docker0", 18080)
    assert _shape(proxy) == [("Interface", "lo", "host"), ("Forwarder", "proxy", ""), ("Interface", "docker0", "host"),
                             ("Interface", "veth7", "host"), ("Inside", "eth0", "")]
    assert proxy.dnat_port == 18080 and proxy.dnat_chain == networking.DNAT_CHAIN and proxy.reached_at is None
    kernel = networking.path_of("bridge", False, "published", 42, private_engine.BRIDGE, 18080,
                                engine_pid=4242)
    assert _shape(kernel) == [("Interface", "lo", "engine"), ("Interface", "lb-noproxy0", "engine"),
                              ("Interface", "vethE", "engine"), ("Inside", "eth0", "")]
    assert all(step.pid == 4242 for step in kernel.interfaces)
    direct = networking.path_of("bridge", True, "container-ip", 42, "docker0", None, reached_at="172.17.0.2")
    assert _shape(direct) == [("Interface", "docker0", "host"), ("Interface", "veth7", "host"), ("Inside", "eth0", "")]
    assert direct.reached_at == "172.17.0.2" and direct.dnat_port is None
    host = networking.path_of("host", True, "published", 42, None, None, gvisor=True)
    assert _shape(host) == [("Interface", "lo", "host"), ("Inside", "lo", "")] and "gVisor" in host.inside.note
    assert _shape(loopback_path()) == _shape(networking.path_of("host", True, "published", 42, None, None))


def test_a_veth_that_cannot_be_found_is_left_out_and_said(monkeypatch):
    monkeypatch.setattr(networking, "peer_index", lambda pid: None)
    path = networking.path_of("bridge", True, "published", 42, "docker0", 18080)
    assert [step.name for step in path.interfaces] == ["lo", "docker0"] and "needs root" in path.facts["veth"]


def test_the_private_engine_takes_a_subnet_no_host_route_uses():
    routes = [{"dst": "default", "dev": "eth0"}, {"dst": "10.226.0.0/16", "dev": "wg0"}, {"dst": "172.17.0.0/16"}]
    assert str(private_engine.free_subnet(routes)) == "10.227.27.0/24"
    every = [{"dst": subnet} for subnet in private_engine.SUBNETS]
    with pytest.raises(SetupError, match="routed on this host"):
        private_engine.free_subnet(every)


@pytest.fixture
def engines_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(private_engine, "ENGINES_DIR", tmp_path)
    monkeypatch.setattr(private_engine, "CGROUP_ROOT", tmp_path / "cgroup")
    return tmp_path


def _engine_folder(root, name: str, owner: dict):
    folder = root / f"{private_engine.PREFIX}{name}"
    (folder / "data").mkdir(parents=True)
    (folder / private_engine.OWNER_FILE).write_text(json.dumps(owner))
    return folder


def test_clean_removes_a_killed_runners_engine_its_processes_and_cgroups_and_spares_a_live_one(engines_dir):
    me = psutil.Process()
    live = _engine_folder(engines_dir, "live", {"runner_pid": me.pid, "runner_started": me.create_time(),
                                                "run_id": "live-run"})
    dead = _engine_folder(engines_dir, "dead", {"runner_pid": me.pid, "runner_started": 1.0, "run_id": "dead-run"})
    cgroup = engines_dir / "cgroup" / "memory" / dead.name / "0123abcd"
    cgroup.mkdir(parents=True)
    # A process standing in for its dockerd: its command line names the engine's folder.
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(dead / "exec")])
    try:
        found = private_engine.find_leftovers()
        assert len(found) == 1 and str(dead) in found[0] and "1 processes" in found[0]
        assert private_engine.clean_leftovers("another-run") == []  # --run of another run: untouched
        assert private_engine.clean_leftovers() == [f"private dockerd {dead}"]
        leftover.wait(timeout=10)  # killed (and reaped by clean's own wait)
        assert not psutil.pid_exists(leftover.pid) and not dead.exists() and not cgroup.parent.exists()
        assert live.exists() and private_engine.find_leftovers() == []
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


def test_the_user_daemons_orphan_shims_never_include_a_private_engines(monkeypatch):
    ours = dict(pid=1, container_id="c1", age_s=60.0, args=["python", "bench.app"], env=[])
    found = [shims.Shim(address="/var/run/docker/containerd/containerd.sock", **ours),
             shims.Shim(address="/var/tmp/layerbench-engine-77-abc123/exec/containerd/containerd.sock", **ours)]
    monkeypatch.setattr(shims, "shims", lambda age, wanted: found)
    monkeypatch.setattr(shims.Shim, "ours", property(lambda self: True))
    assert [shim.address for shim in shims.orphans(set())] == ["/var/run/docker/containerd/containerd.sock"]


def test_a_direct_address_is_loaded_only_once_the_setup_checked_it_again():
    from bench.runner.measure import load_for

    aimed, checks = [], []

    def aim(host):
        aimed.append(host)
        return host
    plain = Instance(port=1, processes=list)
    assert load_for(plain, "the run's load", aim, split=False) == "the run's load" and aimed == []
    path = NetworkPath(steps=(Interface("docker0", "bridge"), Inside("eth0")), reached_at="172.17.0.2",
                       check_reach=lambda: checks.append("checked"))
    direct = Instance(port=8080, processes=list, address="172.17.0.2", network_path=path)
    assert load_for(direct, "the run's load", aim, split=False) == "172.17.0.2" and checks == ["checked"]
    for wrong, split in ((Instance(port=8080, processes=list, address="172.17.0.9", network_path=path), False),
                         (direct, True),  # a split run never loads a container's IP
                         (Instance(port=8080, processes=list, address="172.17.0.2",  # nothing to check it with
                                   network_path=NetworkPath(steps=(), reached_at="172.17.0.2")), False)):
        with pytest.raises(SetupError, match="refusing to load"):
            load_for(wrong, "the run's load", aim, split)
    path.check_reach = lambda: (_ for _ in ()).throw(SetupError("refusing to load the container directly: gone"))
    with pytest.raises(SetupError, match="gone"):
        load_for(direct, "the run's load", aim, split=False)
    assert aimed == ["172.17.0.2"]
