"""Podman as a container engine variant, as declared data and plain arguments: options that go
together, variant names, the locked-down `podman run`, the rootless user's checks, what leftovers
look like, and the image load's failure paths. No engine: tests/integration/test_podman*.py runs
real Podman, as root and as the rootless user."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest
from pydantic import ValidationError

from bench.apps.base import Start
from bench.errors import SetupError
from bench.images import podman_image
from bench.setups.base import Pinning
from bench.setups.container import ContainerSetup, storage
from bench.setups.container.docker_setup import DockerContainerSetup
from bench.setups.container.engine import PID_LABEL, RUN_LABEL
from bench.setups.container.podman import PodmanContainerSetup, arguments, leftovers, user
from bench.setups.container.podman.arguments import RunPlan, run_args
from bench.setups.container.podman.attribution import own_cgroup_dirs
from bench.setups.container.podman.cli import words

PINNING = Pinning((1,), (0,))
APP_START = Start(argv=["/usr/local/bin/python3.11", "-c", "app"], user=(65534, 65534), port=8080)


def _setup(options: dict) -> ContainerSetup:
    return ContainerSetup(options, PINNING, "test-podman", workdir="/tmp")


def _plan(**changes) -> RunPlan:
    fields = dict(name="layerbench-r-1", run_id="r", image_id="de2d43b6", runtime="runc", network="bridge",
                  address="127.0.0.1", host_port=40001, cgroups=True, cpuset="1")
    return RunPlan(**{**fields, **changes})


# ---- options and variants ---------------------------------------------------------------------

def test_the_engine_is_a_variant_and_docker_variants_keep_their_names():
    assert _setup({"network": "bridge"}).variant() == "bridge"
    assert type(_setup({"network": "bridge"})) is DockerContainerSetup
    podman = _setup({"engine": "podman"})
    assert isinstance(podman, PodmanContainerSetup) and podman.variant() == "bridge,podman"
    assert podman.name == "container"  # the same setup: its trials sit beside Docker's
    assert _setup({"engine": "podman", "rootless": True, "network": "host"}).variant() == "host,podman-rootless"
    assert _setup({"engine": "podman", "rootless": True, "port_handler": "slirp4netns"}).variant() \
        == "bridge,podman-rootless,ports=slirp4netns"
    assert _setup({"engine": "podman", "scratch": "volume", "network": "host"}).variant() \
        == "host,scratch=volume,podman"


@pytest.mark.parametrize("options, words_in_error", [
    ({"rootless": True}, "needs engine: podman"),
    ({"port_handler": "slirp4netns"}, "applies to engine: podman"),
    ({"engine": "podman", "runtime": "runsc"}, "Docker only"),
    ({"engine": "podman", "port_handler": "slirp4netns"}, "rootless Podman with a published port"),
    ({"engine": "podman", "rootless": True, "network": "host", "port_handler": "slirp4netns"}, "published port"),
    ({"engine": "podman", "reach": "container-ip"}, "Docker's bridge"),
    ({"engine": "podman", "userland_proxy": False}, "Docker daemon setting"),
    ({"engine": "lxc"}, "docker"),
    ({"scratch": "nfs"}, "volume"),
])
def test_options_that_do_not_go_together_are_one_clear_error(options, words_in_error):
    with pytest.raises(ValidationError) as raised:
        ContainerSetup.Options(**options)
    assert words_in_error in str(raised.value)


def test_each_podman_variant_declares_its_roles_its_fixed_cost_and_its_words():
    rootful = _setup({"engine": "podman"}).describe()
    assert set(rootful["roles"]) == {"app", "conmon"} and rootful["fixed_roles"] == []  # no daemon
    assert "no daemon" in rootful["stack_layers"][2] and "NAT, no proxy" in rootful["stack_layers"][2]
    assert "no userland proxy" in rootful["stack"] and "netavark" in rootful["explanation"]
    rootless = _setup({"engine": "podman", "rootless": True}).describe()
    assert set(rootless["roles"]) == {"app", "conmon", "slirp4netns", "rootlessport", "podman-pause"}
    assert rootless["fixed_roles"] == ["podman-pause"] and rootless["colour"] != rootful["colour"]
    assert "rootlessport" in rootless["stack"] and "user namespace" in rootless["stack"]
    handler = _setup({"engine": "podman", "rootless": True, "port_handler": "slirp4netns"}).describe()
    assert set(handler["roles"]) == {"app", "conmon", "slirp4netns", "podman-pause"}
    host = _setup({"engine": "podman", "rootless": True, "network": "host"}).describe()
    assert set(host["roles"]) == {"app", "conmon", "podman-pause"} and "host network" in host["stack"]


def test_rootless_on_cgroup_v1_says_what_it_cannot_do():
    setup = _setup({"engine": "podman", "rootless": True})
    setup._info = {"host": {"cgroupVersion": "v1"}}
    assert "no cgroups" in setup.layer_stack()[2]
    assert any("no cgroup of its own" in caveat for caveat in setup.caveats())
    assert "no CPU or memory limit" in setup.explain()
    limited = _setup({"engine": "podman", "rootless": True, "cpus": 0.5})
    limited._info = {"host": {"cgroupVersion": "v1"}}
    with pytest.raises(SetupError, match="cannot apply cpus or memory limits on this cgroup v1 host"):
        limited._refuse_what_this_host_cannot()
    v2 = _setup({"engine": "podman", "rootless": True, "cpus": 0.5})
    v2._info = {"host": {"cgroupVersion": "v2"}}
    v2._refuse_what_this_host_cannot()  # cgroup v2 with delegation: limits apply
    assert not v2.caveats()


# ---- the podman run ---------------------------------------------------------------------------

def test_podman_run_is_locked_down_and_publishes_on_one_address_only():
    args = run_args(_plan(), APP_START, storage.Scratch("tmpfs"), writable_root=False)
    for flag in (["--cap-drop", "all"], ["--security-opt", "no-new-privileges"], ["--user", "65534:65534"],
                 ["--publish", "127.0.0.1:40001:8080"], ["--runtime", "runc"], ["--cpuset-cpus", "1"],
                 ["--tmpfs", "/tmp:rw,size=64m"], ["--label", f"{RUN_LABEL}=r"], ["--label", f"{PID_LABEL}={os.getpid()}"]):
        assert any(args[i:i + 2] == flag for i in range(len(args))), flag
    assert "--read-only" in args and "--privileged" not in args and "--network" not in args
    assert args[-4:] == ["de2d43b6", "/usr/local/bin/python3.11", "-c", "app"]  # the image, then the app's command


def test_rootless_on_cgroup_v1_gets_no_cgroup_flags_and_the_host_network_no_port():
    args = run_args(_plan(cgroups=False, cpus=0.5, memory="256m", network="host"), APP_START, None, False)
    assert "--cpuset-cpus" not in args and "--cpus" not in args and "--memory" not in args
    assert args[args.index("--network") + 1] == "host" and "--publish" not in args
    handler = run_args(_plan(port_handler="slirp4netns"), APP_START, None, False)
    assert handler[handler.index("--network") + 1] == "slirp4netns:port_handler=slirp4netns"


@pytest.mark.parametrize("kind, expected", [
    ("tmpfs", ["--tmpfs", "/tmp:rw,size=64m"]),
    ("overlay", []),
    ("volume", ["--volume", "layerbench-r-ab12-tmp:/tmp"]),
    ("bind", ["--volume", "/tmp/layerbench-bind-1-x:/tmp"]),
])
def test_each_scratch_kind_mounts_its_storage_at_tmp(kind, expected):
    from pathlib import Path

    scratch = storage.Scratch(kind, volume="layerbench-r-ab12-tmp" if kind == "volume" else None,
                              directory=Path("/tmp/layerbench-bind-1-x") if kind == "bind" else None)
    args = run_args(_plan(), APP_START, scratch, writable_root=scratch.writable_root)
    assert [arg for arg in args if arg in ("--tmpfs", "--volume")] == expected[:1]
    assert all(part in args for part in expected)
    assert ("--read-only" in args) == (kind != "overlay")


def test_rlimits_follow_what_root_may_set_here(monkeypatch):
    monkeypatch.setattr(arguments, "_has_capability", lambda bit: True)
    assert arguments.ulimit_args(rootless=False) == ()  # Podman's own defaults
    monkeypatch.setattr(arguments, "_has_capability", lambda bit: False)
    monkeypatch.setattr(arguments.resource, "getrlimit",
                        lambda which: (1024, 20000) if which == arguments.resource.RLIMIT_NOFILE else (96367, 96367))
    assert arguments.ulimit_args(rootless=False) == ("nofile=20000:20000", "nproc=32768:32768")
    assert arguments.ulimit_args(rootless=True) == ()  # rootless Podman uses the current hard limits


# ---- storage ----------------------------------------------------------------------------------

def test_a_bind_folder_is_open_like_tmp_and_goes_with_its_container():
    scratch = storage.make("bind", "unused")
    try:
        assert scratch.directory.is_dir() and scratch.directory.stat().st_mode & 0o7777 == 0o1777
        assert scratch.directory.name.startswith(f"layerbench-bind-{os.getpid()}-")
    finally:
        storage.remove_directory(scratch)
    assert not scratch.directory.exists()
    volume = storage.make("volume", "layerbench-run/with:odd chars")
    assert volume.volume.startswith("layerbench-run-with-odd-chars-") and volume.volume.endswith("-tmp")


def test_a_dead_runners_bind_folder_is_swept_by_bench_clean_and_a_live_ones_is_not(tmp_path):
    from bench import scratch

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"layerbench-bind-{dead.pid}-abc").mkdir()
    (tmp_path / f"layerbench-bind-{os.getpid()}-def").mkdir()
    removed = scratch.clean_stale(temp_root=tmp_path, cache=tmp_path / "cache")
    assert len(removed) == 1 and f"bind-{dead.pid}-" in removed[0]
    assert [path.name for path in tmp_path.iterdir()] == [f"layerbench-bind-{os.getpid()}-def"]


def test_each_scratch_kind_names_the_filesystem_its_writes_reach():
    assert storage.filesystem_of("/proc/self") == "proc on proc"
    assert "RAM" in storage.explain("tmpfs", None, None)
    assert "overlayfs" in storage.explain("overlay", "/proc", None) and "proc on proc" in storage.explain(
        "overlay", "/proc", None)
    assert "skip overlayfs" in storage.explain("volume", None, "/proc/sys")
    assert "bind mount" in storage.explain("bind", None, None)
    assert storage.docker_kwargs(None, True, {}) == {"tmpfs": {"/tmp": "size=64m"}}
    mount = storage.docker_kwargs(storage.Scratch("volume", volume="v"), True, {"a": "b"})["mounts"][0]
    assert (mount["Type"], mount["Source"], mount["Target"], mount["VolumeOptions"]["Labels"]) == \
        ("volume", "v", "/tmp", {"a": "b"})


# ---- the rootless user ------------------------------------------------------------------------

def test_subordinate_ranges_are_read_per_user(tmp_path):
    subuid = tmp_path / "subuid"
    subuid.write_text("cloud:100000:65536\nlayerbench-rootless:165536:65536\nbroken line\n")
    assert user.subid_range("layerbench-rootless", str(subuid)) == (165536, 65536)
    assert user.subid_range("nobody", str(subuid)) is None
    assert user.subid_range("cloud", str(tmp_path / "missing")) is None


def test_rootless_needs_its_user_and_says_how_to_make_it(monkeypatch):
    monkeypatch.setattr(user, "rootless_user", lambda: None)
    assert "sudo scripts/host-setup.sh creates it" in user.rootless_unavailable_reason()
    assert "Podman is not installed" in user.unavailable_reason(rootless=True, podman_found=False)
    monkeypatch.setattr(user, "rootless_user",
                        lambda: user.PodmanUser(True, "layerbench-rootless", 4242, 4242, "/var/lib/x"))
    monkeypatch.setattr(user.os, "geteuid", lambda: 1000)  # neither root nor the user
    assert "run bench as root" in user.rootless_unavailable_reason()
    assert "rootful Podman needs root" in user.unavailable_reason(rootless=False, podman_found=True)


def test_the_rootless_user_gets_a_clean_environment_of_its_own(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://example:2375")
    rootless = user.PodmanUser(True, "layerbench-rootless", 4242, 4242, "/var/lib/layerbench-rootless")
    env = rootless.env()
    assert env["HOME"] == "/var/lib/layerbench-rootless" and env["XDG_RUNTIME_DIR"] == "/run/user/4242"
    assert "DOCKER_HOST" not in env and env["USER"] == "layerbench-rootless"


def test_podmans_words_come_without_its_log_prefix_and_rootless_noise():
    stderr = ('time="2026-12-07T11:56:29Z" level=warning msg="\\"/\\" is not a shared mount, this could cause '
              'issues or missing mounts with rootless containers"\nError: crun: cgroups in hybrid mode not '
              'supported, drop all controllers from cgroupv2\n')
    assert words(stderr) == "crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2"


# ---- leftovers and cgroups ----------------------------------------------------------------------

def test_a_leftover_is_what_a_gone_runner_labelled():
    now = time.time()
    alive = {RUN_LABEL: "r1", PID_LABEL: str(os.getpid())}
    entries = [{"Id": "a", "Labels": alive, "Created": now},  # a live runner's: spared
               {"Id": "b", "Labels": {RUN_LABEL: "r2", PID_LABEL: "0"}, "Created": now},  # no runner
               {"Id": "c", "Labels": {**alive, RUN_LABEL: "r3"},  # made before this process started: pid reused
                "Created": psutil.Process().create_time() - 3600},
               {"Id": "d", "Labels": {"other": "1"}, "Created": now}]  # not ours
    assert [entry["Id"] for entry in leftovers._ours(entries, None, "Created")] == ["b", "c"]
    assert [entry["Id"] for entry in leftovers._ours(entries, "r2", "Created")] == ["b"]
    assert leftovers._created_s("2026-12-07T12:00:00.123456789Z") == leftovers._created_s("2026-12-07T12:00:00Z")
    assert leftovers._created_s("2026-12-07T13:00:00+01:00") == leftovers._created_s("2026-12-07T12:00:00Z")


def test_a_rootless_container_without_cgroups_of_its_own_gets_no_engine_accounting():
    from pathlib import Path

    own = {"cpu": Path("/sys/fs/cgroup/cpu/libpod_parent/libpod-abc123"), "memory": Path("/x/libpod-abc123")}
    assert own_cgroup_dirs(own, "abc123") == own
    runners = {"cpu": Path("/sys/fs/cgroup/cpu"), "memory": Path("/sys/fs/cgroup/memory/process_api/x")}
    assert own_cgroup_dirs(runners, "abc123") == {}  # the runner's cgroup: its counters are not the container's


# ---- the image load ---------------------------------------------------------------------------

class _FakeDocker:
    def __init__(self, chunks, fail_after: int | None = None):
        self.api = self
        self.chunks, self.fail_after = chunks, fail_after

    def get_image(self, reference, chunk_size):
        for index, chunk in enumerate(self.chunks):
            if self.fail_after is not None and index >= self.fail_after:
                raise KeyboardInterrupt
            yield chunk


def _load(command: str):
    return lambda: subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)


def test_an_image_already_in_podman_is_not_loaded_again():
    assert podman_image.ensure_loaded(_FakeDocker([]), "t", "sha256:abc", lambda image_id: image_id == "abc",
                                      lambda: pytest.fail("loaded again")) is False


def test_a_load_streams_the_image_and_a_failed_one_says_podmans_words(tmp_path):
    target = tmp_path / "loaded.tar"
    streamed = lambda image_id: target.exists() and target.read_bytes() == b"a" * 10 + b"b" * 5  # noqa: E731
    assert podman_image.ensure_loaded(_FakeDocker([b"a" * 10, b"b" * 5]), "t", "sha256:abc", streamed,
                                      _load(f"cat > {target}")) is True
    with pytest.raises(SetupError, match="is not in Podman's store"):
        podman_image.ensure_loaded(_FakeDocker([b"a"]), "t", "sha256:abc", lambda image_id: False,
                                   _load("cat >/dev/null"))
    with pytest.raises(SetupError, match="podman load failed: no such archive"):
        podman_image.ensure_loaded(_FakeDocker([b"a"]), "t", "sha256:abc", lambda image_id: False,
                                   _load("cat >/dev/null; echo 'no such archive' >&2; exit 125"))


def test_an_interrupt_mid_stream_ends_the_load():
    started = []

    def start():
        started.append(_load("cat >/dev/null")())
        return started[-1]
    with pytest.raises(KeyboardInterrupt):
        podman_image.ensure_loaded(_FakeDocker([b"a", b"b", b"c"], fail_after=1), "t", "sha256:abc",
                                   lambda image_id: False, start)
    assert started[0].poll() is not None  # killed and reaped, not left reading


def test_rootless_with_the_host_network_refuses_a_privileged_port_before_anything_starts(monkeypatch):
    setup = _setup({"engine": "podman", "rootless": True, "network": "host"})
    monkeypatch.setattr(setup.app, "start", lambda place: Start(None, 80))
    with pytest.raises(SetupError, match="cannot listen on port 80 with the host network"):
        setup._refuse_what_this_host_cannot()
    monkeypatch.setattr(setup.app, "start", lambda place: Start(None, place.port))
    setup._refuse_what_this_host_cannot()  # layerbench's apps listen where they are told: above 1024


class _NetworkInspect:
    def json(self, *args):
        assert args == ("network", "inspect", "podman")
        return [{"network_interface": "podman7"}]


@pytest.mark.parametrize("options, steps", [
    ({"network": "host"}, ["interface:lo", "inside:lo"]),
    ({"network": "host", "rootless": True}, ["interface:lo", "inside:lo"]),
    ({}, ["interface:podman7", "inside:eth0"]),  # no veth name without the container's pid
    ({"rootless": True}, ["interface:lo", "process:rootlessport", "inside:lo"]),
    ({"rootless": True, "port_handler": "slirp4netns"}, ["interface:lo", "process:slirp4netns", "inside:tap0"]),
])
def test_each_podman_variant_declares_the_hops_its_requests_cross(options, steps):
    from bench.setups.container.podman.netpath import network_path

    path = network_path(ContainerSetup.Options(engine="podman", **options), _NetworkInspect(), 0, 8080)
    described = [step.describe() for step in path.steps]
    assert [f"{step['step']}:{step.get('name') or step.get('role')}" for step in described] == steps
    assert path.dnat_port == (8080 if options == {} else None)  # rootful bridge: kernel DNAT, no proxy


def test_each_engine_is_found_through_the_registry_and_mixed_in_under_a_subclass():
    """The container setup imports no engine's code: engines.VARIANTS finds Docker's and Podman's
    classes; a subclass (a stand-in that replaces the lifecycle) keeps its own methods first."""
    from bench.setups.container import engines

    assert [cls.engine_name for cls in engines.variant_classes()] == ["docker", "podman"]

    class StandIn(ContainerSetup):
        def _launch(self):
            return "stand-in"

    for options, engine_class in (({}, DockerContainerSetup), ({"engine": "podman"}, PodmanContainerSetup)):
        setup = StandIn(options, PINNING, "test-engines", workdir="/tmp")
        assert isinstance(setup, engine_class) and setup._launch() == "stand-in"
        assert type(setup) is type(StandIn(options, PINNING, "test-engines", workdir="/tmp"))  # made once
