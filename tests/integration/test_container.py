"""The container setup against the real Docker engine: image from scratch, both networks, limits,
attribution, errors, cleanup. Skips without a daemon, except in CI (CI=true), where it fails."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from pydantic import ValidationError

from bench.errors import SetupError
from bench.images.docker_image import base_image_dockerfile, ensure_tree_image, image_changes, remove_images
from bench.images.rootfs import build_rootfs
from bench.roles import ROLE_APP, ROLE_PROXY, ROLE_RUNTIME
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup
from bench.setups.container.engine import RUN_LABEL, clean_leftovers
from tests.app_requests import get_ok as _get
from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.docker]

RUN_ID = f"test-{os.getpid()}"


@pytest.fixture(scope="module")
def client():
    reason = ContainerSetup.check()
    require(reason is None, f"a Docker daemon: {reason}")
    import docker

    client = docker.from_env()
    yield client
    clean_leftovers(RUN_ID)
    client.close()


def test_the_image_is_imported_from_scratch_once_then_found(client):
    """A cold import and a warm look-up of the app's rootfs, into a repository of this test's own
    (removed after): the shared layerbench/app images may be in use by other runs on this daemon."""
    rootfs = build_rootfs()
    repository = f"layerbench-test/cold-{os.getpid()}"
    try:
        began = time.perf_counter()
        cold = ensure_tree_image(client, rootfs.path, rootfs.digest, repository, image_changes(rootfs),
                                 python=rootfs.python)
        cold_s, began = time.perf_counter() - began, time.perf_counter()
        warm = ensure_tree_image(client, rootfs.path, rootfs.digest, repository, image_changes(rootfs),
                                 python=rootfs.python)
        print(f"\nimage {cold.tag}: {cold.size_bytes} bytes, cold {cold_s:.1f} s, warm {time.perf_counter() - began:.2f} s")
        assert cold.built and not warm.built and cold.image_id == warm.image_id and cold.size_bytes > 0
    finally:
        remove_images(client, repository=repository)
    assert client.images.list(name=repository) == []


@pytest.fixture(scope="module")
def built_image(client):
    """The app's image, built once (or found) for the module."""
    setup = _setup({})
    setup.prepare()
    assert setup._image.size_bytes > 0
    return setup._image


def _setup(options: dict, progress=lambda message: None) -> ContainerSetup:
    return ContainerSetup(options, Pinning.default(), RUN_ID, workdir="/tmp", progress=progress)


def _roles(instance) -> dict[str, list]:
    roles: dict[str, list] = {}
    for role_process in instance.processes():
        roles.setdefault(role_process.role, []).append(role_process.process)
    return roles


def _ours(client) -> list:
    """This module's containers (other suites on the same daemon run their own)."""
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={RUN_ID}"})


@pytest.mark.parametrize("network", ["bridge", "host"])
def test_serves_unprivileged_with_attribution(client, built_image, network):
    setup = _setup({"network": network})
    with setup.running() as instance:
        assert list(instance.phases) == ["image_s", "create_s", "start_s", "first_200_s"]
        assert _get(instance.port, "/hello") == b"hello\n"
        assert json.loads(_get(instance.port, "/cpu?n=1000"))["rounds"] == 1000
        stats = json.loads(_get(instance.port, "/stats"))
        assert (stats["uid"], stats["gid"]) == (65534, 65534)
        assert stats["cpus_allowed"] == list(setup.pinning.app_cpus)

        roles = _roles(instance)
        assert roles[ROLE_APP] and roles[ROLE_APP][0].pid == instance.facts["init_pid"]
        assert roles[ROLE_RUNTIME][0].name().startswith("containerd-shim")
        if network == "bridge":
            assert roles[ROLE_PROXY][0].name() == "docker-proxy"
        else:
            assert ROLE_PROXY not in roles
        again = _roles(instance)  # the sampler needs the very same objects between calls
        assert all(a is b for a, b in zip(roles[ROLE_APP], again[ROLE_APP]))

        accounting = instance.engine_accounting()
        assert accounting["cpu_ns"] > 0 and accounting["memory_bytes"] > 0
        assert instance.facts["image_tag"] == built_image.tag and instance.facts["network"] == network
        name = instance.facts["container_name"]
    assert not [c for c in _ours(client) if c.name == name]
    setup._terminate(instance)  # idempotent: the container is already gone


def test_limits_are_visible_inside(client, built_image):
    setup = _setup({"cpus": 0.5, "memory": "256m"})
    assert setup.variant() == "bridge,cpus=0.5,mem=256m"
    with setup.running() as instance:
        cgroup = json.loads(_get(instance.port, "/stats"))["cgroup"]
    if "cpu_max" in cgroup:  # cgroup v2
        assert cgroup["cpu_max"].split()[0] == "50000"
        assert cgroup["memory_max"] == str(256 * 1024 * 1024)
    else:
        assert int(cgroup["cpu_cfs_quota_us"]) / int(cgroup["cpu_cfs_period_us"]) == 0.5
        assert cgroup["memory_limit_in_bytes"] == str(256 * 1024 * 1024)


def test_overlay_scratch_writes_through_the_writable_layer(client, built_image):
    setup = _setup({"network": "host", "scratch": "overlay"})
    assert setup.variant() == "host,scratch=overlay"
    assert _setup({"network": "host"}).variant() == "host"  # tmpfs stays the default, unnamed
    with setup.running() as instance:
        assert json.loads(_get(instance.port, "/io?kb=64"))["read"] == 64 * 1024
        stats = json.loads(_get(instance.port, "/stats"))
        assert (stats["uid"], stats["gid"]) == (65534, 65534)
        container = client.containers.get(instance.facts["container_id"])
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is False
        assert not container.attrs["HostConfig"].get("Tmpfs")
        assert "overlay" in container.attrs["GraphDriver"]["Name"]
        # As the app's user: /tmp is no mount of its own, / is overlayfs, and a file written
        # to /tmp lands in the container's writable layer (docker diff sees it).
        python = built_image.app_argv("127.0.0.1", 1)[0]
        code = ("import tempfile; mounts = [line.split() for line in open('/proc/mounts')]; "
                "print([m[2] for m in mounts if m[1] == '/'], [m[1] for m in mounts if m[1] == '/tmp'], "
                "tempfile.gettempdir()); open('/tmp/layerbench-probe', 'w').write('x')")
        exit_code, output = container.exec_run([python, "-I", "-S", "-c", code], user="65534:65534")
        assert exit_code == 0, output
        assert output.decode().split() == ["['overlay']", "[]", "/tmp"]
        assert {"Path": "/tmp/layerbench-probe", "Kind": 1} in (container.diff() or [])


def test_engine_refusal_is_one_line(client, built_image):
    with pytest.raises(SetupError) as refused:
        with _setup({"memory": "1m"}).running():
            pass
    assert "\n" not in str(refused.value) and "memory" in str(refused.value).lower()
    assert not [c for c in _ours(client) if c.labels.get("layerbench.run") == RUN_ID]


def test_clean_leftovers_removes_a_forgotten_container(client, built_image, monkeypatch):
    import types

    import bench.setups.container.docker_setup as container_module

    dead = subprocess.Popen(["true"])
    dead.wait()
    setup = _setup({"network": "host"})
    for attempt in range(2):
        with monkeypatch.context() as patched:  # labelled with a runner that has exited, as after a crash
            patched.setattr(container_module, "os", types.SimpleNamespace(getpid=lambda: dead.pid))
            instance = setup._launch()  # never terminated
        removed = clean_leftovers(RUN_ID)
        # The other worker's plain `bench clean` removes every dead runner's leftovers, this one
        # too, and did once in a whole-suite run: then the container is gone and this says nothing.
        # Try once more; twice in a row would be a bug here.
        if removed or client.containers.list(all=True, filters={"name": instance.facts["container_name"]}):
            break
    assert removed == [f"container {instance.facts['container_name']}"], attempt
    assert clean_leftovers(RUN_ID) == []
    setup._terminate(instance)  # tolerates the container being gone


def test_clean_leftovers_of_one_run_spares_a_container_whose_runner_lives(client, built_image):
    setup = _setup({"network": "host"})
    instance = setup._launch()  # labelled with this process, which is alive: a run still going
    try:
        assert clean_leftovers(RUN_ID) == []
        assert client.containers.get(instance.facts["container_name"]).status == "running"
    finally:
        setup._terminate(instance)


def test_options_are_validated():
    with pytest.raises(ValidationError):
        ContainerSetup.Options(network="nat")
    with pytest.raises(ValidationError):
        ContainerSetup.Options(memory="lots")
    with pytest.raises(ValidationError):
        ContainerSetup.Options(cpus=0)
    with pytest.raises(ValidationError):
        ContainerSetup.Options(scratch="disk")
    assert _setup({"network": "host", "memory": "256M"}).variant() == "host,mem=256m"


@pytest.mark.parametrize("network", ["bridge", "host"])
def test_port_taken_is_one_clear_error(client, built_image, network, monkeypatch):
    import socket

    import bench.setups.container.docker_setup as container_module

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))  # bound, not listening: the readiness probe is refused at once
        monkeypatch.setattr(container_module, "free_port", lambda *address: squatter.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(SetupError) as taken:
            with _setup({"network": network}).running():
                pass
    message = str(taken.value)
    assert "\n" not in message
    assert ("is taken" in message) if network == "bridge" else ("cannot listen" in message)
    assert time.monotonic() - began < 15  # the exit is noticed, not waited out to the deadline
    assert not [c for c in _ours(client) if c.labels.get("layerbench.run") == RUN_ID]


def test_base_image_dockerfile_copies_only_the_app():
    text = base_image_dockerfile("python:3.12-slim")
    assert text.startswith("FROM python:3.12-slim\n") and "USER 65534:65534" in text
    assert '"--port", "8080"' in text and "pip" not in text


def test_nothing_left_behind(client):
    assert _ours(client) == []


def test_prune_images_keeps_the_current_image_and_removes_older_ones(client, built_image):
    import io
    import tarfile

    from bench.setups.container.engine import prune_images

    # A distinct image under the same repository stands for one built from older inputs.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        tar.addfile(info, io.BytesIO(b""))
    client.api.import_image_from_data(archive.getvalue(), repository="layerbench/app", tag="0000older")
    # Other checkouts on this daemon may hold images of other inputs too: those go as well.
    assert "image layerbench/app:0000older" in prune_images()
    assert client.images.get(built_image.tag)  # the current one stays
    assert not client.images.list(name="layerbench/app:0000older")
