"""Podman as the container engine, against real Podman: rootful and rootless (as the dedicated user),
with a published port and with the host network. Each serves, locked down, on 127.0.0.1 only; its
processes are found by role (conmon, slirp4netns, rootlessport); and once stopped, or after a whole
run, `podman ps -a` lists nothing of it for root or for the rootless user and no helper is left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest

from bench.roles import ROLE_APP
from bench.runner import Runner
from bench.scenario import parse_scenario
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup
from bench.setups.container.podman.user import rootless_user, subid_range
from tests.app_requests import get_ok as get
from tests.integration.podman_checks import VARIANTS, assert_nothing_left, containers_of, podman_group, podman_or_skip

pytestmark = podman_group
RUN_ID = f"test-podman-{os.getpid()}"


def _listeners(port: int) -> set[str]:
    return {connection.laddr.ip for connection in psutil.net_connections("tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_podman_variant_serves_locked_down_with_its_processes_and_leaves_nothing(variant):
    options = VARIANTS[variant]
    rootless = options.get("rootless", False)
    podman_or_skip(rootless)
    setup = ContainerSetup(options, Pinning.default(), RUN_ID, workdir="/tmp")
    setup.prepare()
    with setup.running() as instance:
        assert list(instance.phases) == ["image_s", "run_s", "first_200_s"]
        assert get(instance.port, "/hello") == b"hello\n"
        stats = json.loads(get(instance.port, "/stats"))
        assert (stats["uid"], stats["gid"]) == (65534, 65534) and stats["cpus_allowed"] == list(setup.pinning.app_cpus)
        init = psutil.Process(instance.facts["init_pid"])
        assert int(Path(f"/proc/{init.pid}/status").read_text().split("CapEff:")[1].split()[0], 16) == 0  # no capability
        if rootless:  # the container's 65534 is one of the dedicated user's subordinate ids on the host
            first, _ = subid_range(rootless_user().name, "/etc/subuid")
            assert init.uids().real == first + 65534 - 1
            assert psutil.Process(instance.facts["conmon_pid"]).uids().real == rootless_user().uid
        # On loopback only: the app itself (host network), conmon holding the port (rootful), rootlessport
        # or slirp4netns (rootless).
        assert _listeners(instance.port) == {"127.0.0.1"}
        roles = {}
        for role_process in instance.processes():
            roles.setdefault(role_process.role, []).append(role_process.process)
        expected = {"app", "conmon", *(role.key for role in setup._helper_roles())}
        assert set(roles) == expected, roles
        assert roles[ROLE_APP][0].pid == instance.facts["init_pid"]
        assert (instance.engine_accounting is None) == (rootless and instance.facts["cgroup_version"] == "v1")
        described = setup.describe()
        assert set(described["roles"]) >= expected and "podman" in setup.variant()
        # The hops its requests cross exist: every host interface reads, the one inside is the app's own.
        path = instance.network_path
        assert None not in path.read().values(), path.read()
        assert path.inside.name in stats["net_dev"], (path.inside.name, stats["net_dev"])
        if options.get("network") == "bridge" and not rootless:  # netavark's bridge and the container's veth
            assert [interface.kind for interface in path.interfaces] == ["bridge", "veth"]
        helper_pids = [process.pid for processes in roles.values() for process in processes]
    assert containers_of(rootless, RUN_ID) == []
    assert_nothing_left(RUN_ID, rootless_too=rootless)
    assert not [pid for pid in helper_pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(300)
def test_after_a_run_of_every_podman_variant_podman_lists_nothing_for_root_or_the_rootless_user(tmp_path):
    podman_or_skip(rootless=False)
    podman_or_skip(rootless=True)
    setups = "\n".join(f"  - container: {json.dumps(options)}" for options in VARIANTS.values())
    scenario = parse_scenario(f"name: engines-test\nsetups:\n  - bare\n{setups}\nworkloads:\n"
                              "  - {name: hello, endpoint: hello, connections: 4, duration: 0.5, warmup: 0.1}\n"
                              "repeat: 1\n")
    runner = Runner(scenario, tmp_path)
    runner.run()
    statuses = {(trial.setup, trial.variant): trial.status for trial in runner.record.trials}
    assert set(statuses.values()) == {"ok"}, statuses
    assert len(statuses) == 1 + len(VARIANTS)
    for layer in runner.record.layers:  # the declaration every output reads: roles and the layer-stack words
        if "podman" in layer.variant:
            assert "conmon" in layer.roles and "no daemon" in layer.stack_layers[2]
    assert_nothing_left(runner.run_id)
    user_containers = containers_of(rootless=True)
    assert user_containers == [], f"the rootless user's podman ps -a: {user_containers}"
