"""The OCI config for the container inside the VM (pure), and the start script and bundle that
bench.images.guest_runtime makes from an app's guest start to use it."""

from __future__ import annotations

import json

import pytest

from bench.images.guest_init import GUEST_BUSYBOX, init_script, run_as
from bench.images.guest_runtime import (BUNDLE_IN_GUEST, CONTAINER_ID, MARKER_CREATE, MARKER_START, PID_FILE, PIVOT,
                                        RUNTIMES, START_SCRIPT, bundle_config, container_guest, find_runtime,
                                        in_guest, runtime_files, start_script, state_dir)
from bench.images.oci_bundle import CGROUPS_PATH, config_json, oci_config
from bench.images.rootfs import NOBODY_ID, app_argv
from tests.conftest import require

ARGV = app_argv("/usr/local/bin/python3.11", "0.0.0.0", 8080)
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONHOME": "/usr/local"}


def config(**overrides) -> dict:
    return oci_config(ARGV, ENV, uid=NOBODY_ID, **overrides)


def test_process_is_the_app_as_nobody_without_privileges():
    process = config()["process"]
    assert process["args"] == ARGV
    assert process["user"] == {"uid": 65534, "gid": 65534, "additionalGids": []}
    assert process["cwd"] == "/tmp"
    assert process["env"] == ["PATH=/usr/local/bin:/usr/bin:/bin", "PYTHONHOME=/usr/local"]
    assert process["noNewPrivileges"] is True
    assert process["terminal"] is False
    assert set(process["capabilities"]) == {"bounding", "effective", "inheritable", "permitted", "ambient"}
    assert all(value == [] for value in process["capabilities"].values())


def test_gid_can_differ_from_uid():
    assert config(gid=100)["process"]["user"]["gid"] == 100


def test_namespaces_share_the_guest_network():
    kinds = [entry["type"] for entry in config()["linux"]["namespaces"]]
    assert sorted(kinds) == ["ipc", "mount", "pid", "uts"]
    assert "network" not in kinds  # QEMU's port forward must reach the app in the guest's netns
    assert all("path" not in entry for entry in config()["linux"]["namespaces"])  # new ones, not joined


def test_root_is_read_only_with_a_tmpfs_at_tmp():
    whole = config(tmp_size_mb=32)
    assert whole["root"] == {"path": "rootfs", "readonly": True}
    tmp = [mount for mount in whole["mounts"] if mount["destination"] == "/tmp"]
    assert len(tmp) == 1 and tmp[0]["type"] == "tmpfs"
    assert "size=32m" in tmp[0]["options"] and "mode=1777" in tmp[0]["options"]


def test_kernel_interfaces_are_mounted_masked_and_read_only():
    whole = config()
    destinations = [mount["destination"] for mount in whole["mounts"]]
    assert destinations.index("/dev") < destinations.index("/dev/pts")  # parents before children
    assert destinations.index("/sys") < destinations.index("/sys/fs/cgroup")
    sys_mount = next(mount for mount in whole["mounts"] if mount["destination"] == "/sys")
    assert "ro" in sys_mount["options"]
    assert "/proc/kcore" in whole["linux"]["maskedPaths"]
    assert "/proc/sys" in whole["linux"]["readonlyPaths"]
    assert whole["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert whole["linux"]["cgroupsPath"] == CGROUPS_PATH


@pytest.mark.parametrize("bad", [dict(args=[]), dict(uid=-1), dict(gid=-5), dict(cwd="tmp"), dict(tmp_size_mb=0)])
def test_bad_input_is_refused(bad):
    arguments = dict(args=ARGV, env=ENV, uid=NOBODY_ID) | bad
    with pytest.raises(ValueError):
        oci_config(**arguments)


def test_config_json_is_stable_bytes_of_the_same_config():
    first, second = config_json(config()), config_json(config())
    assert first == second and first.endswith(b"\n")
    assert json.loads(first) == config()
    assert config_json(config(hostname="other")) != first


def test_the_input_argv_is_copied_not_shared():
    argv = list(ARGV)
    built = oci_config(argv, ENV, uid=NOBODY_ID)
    argv.append("--extra")
    assert built["process"]["args"] == ARGV


def _guest(root, drops=True):
    from bench.apps.base import GuestStart

    argv = run_as(ARGV, NOBODY_ID) if drops else ARGV
    return GuestStart(root=root, digest="0" * 64, argv=argv, env=ENV, uid=NOBODY_ID, gid=NOBODY_ID, port=8080,
                      workdir="/tmp", drops_own_privileges=drops, ready_line="listening on")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_start_script_creates_then_starts_and_stamps_both(runtime):
    lines = start_script(runtime)
    create = f"{in_guest(runtime)} --root {state_dir(runtime)} create {PIVOT} --pid-file {PID_FILE} " \
             f"--bundle {BUNDLE_IN_GUEST} {CONTAINER_ID}"
    start = f"{in_guest(runtime)} --root {state_dir(runtime)} start {CONTAINER_ID}"
    assert create in lines and start in lines
    assert state_dir(runtime).startswith("/run/") and PID_FILE.startswith("/run/")  # on the tmpfs mounted first
    assert lines.index(create) < lines.index(MARKER_CREATE) < lines.index(start) < lines.index(MARKER_START)
    assert f"runtime={runtime} status=$?" in lines
    assert "mount -t tmpfs" in lines and "mount -t cgroup2 cgroup2 /sys/fs/cgroup" in lines
    assert f"mount -o bind / {BUNDLE_IN_GUEST}/rootfs" in lines  # where config.json's root points
    assert lines.rstrip().endswith("done")  # it stays while the app lives: init sees the app exit through it


def test_the_bundle_runs_the_apps_own_start_and_init_runs_the_script(tmp_path):
    guest = _guest(tmp_path)
    started, files = container_guest(guest, "runc") if find_runtime("runc") else (None, None)
    bundle = json.loads(bundle_config(guest))
    assert bundle["process"]["args"] == ARGV  # the privilege drop is gone: the container starts it as nobody
    assert bundle["process"]["user"]["uid"] == NOBODY_ID and bundle["process"]["cwd"] == "/tmp"
    assert json.loads(bundle_config(_guest(tmp_path, drops=False)))["process"]["args"] == ARGV
    require(started is not None, "runc (apt-get install runc)")
    assert started.argv == [GUEST_BUSYBOX, "sh", START_SCRIPT] and (started.uid, started.gid) == (0, 0)
    assert started.port == guest.port and started.ready_line == guest.ready_line and started.root == guest.root
    assert json.loads(files[f"{BUNDLE_IN_GUEST}/config.json"]) == bundle
    script = init_script(["virtio_net.ko"], started)
    assert START_SCRIPT in script and "setpriv" not in script  # the script runs as root; the runtime sets the user


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_runtime_and_the_libraries_the_root_lacks_go_in(tmp_path, runtime):
    require(find_runtime(runtime) is not None, f"{runtime} (apt-get install {runtime})")
    files = runtime_files(tmp_path, runtime)  # an empty root: every library goes in
    assert files[in_guest(runtime)][:4] == b"\x7fELF" and in_guest(runtime).startswith("/.layerbench/")
    assert any("libseccomp.so" in path for path in files) and any("libc.so" in path for path in files)
    libc = next(path for path in files if "libc.so" in path)
    mine = tmp_path / libc.lstrip("/")
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"another C library")
    with pytest.raises(ValueError, match="its own"):
        runtime_files(tmp_path, runtime)
