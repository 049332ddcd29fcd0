"""The OCI config for the container inside the VM (pure), and the runc init lines that use it."""

from __future__ import annotations

import json

import pytest

from bench.images.guest_runtime import (BUNDLE_IN_GUEST, CONTAINER_ID, MARKER_CREATE, MARKER_START, PIVOT, RUNTIMES,
                                        in_guest, launch_script, state_dir)
from bench.images.initramfs import APP_OUTPUT_LOOP, init_script
from bench.images.oci_bundle import CGROUPS_PATH, config_json, oci_config
from bench.images.rootfs import NOBODY_ID, app_argv

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


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_launch_creates_then_starts_and_stamps_both(runtime):
    lines = launch_script(APP_OUTPUT_LOOP, runtime)
    create = f"{in_guest(runtime)} --root {state_dir(runtime)} create {PIVOT} --bundle {BUNDLE_IN_GUEST} {CONTAINER_ID}"
    start = f"{in_guest(runtime)} --root {state_dir(runtime)} start {CONTAINER_ID}"
    assert create in lines and start in lines
    assert state_dir(runtime).startswith("/run/")  # on the tmpfs mounted below
    assert lines.index(create) < lines.index(MARKER_CREATE) < lines.index(start) < lines.index(MARKER_START)
    assert f"runtime={runtime} status=$?" in lines
    # runc's state on a tmpfs, cgroup2 mounted, and the guest root bound where config.json's root points
    assert "mount -t tmpfs" in lines and "/run" in lines
    assert "mount -t cgroup2 cgroup2 /sys/fs/cgroup" in lines
    assert f"mount -o bind / {BUNDLE_IN_GUEST}/rootfs" in lines
    # the reader of the app's output is started (in the background) before runc opens the fifo to write
    assert lines.index("</tmp/app.out &") < lines.index(create)


def test_init_script_default_is_unchanged_by_the_launch_option():
    default = init_script(["virtio_net.ko"], ARGV, ENV, 8080)
    with_runc = init_script(["virtio_net.ko"], ARGV, ENV, 8080, launch=launch_script(APP_OUTPUT_LOOP, "runc"))
    assert "runc" not in default and "env -i" in default
    assert MARKER_CREATE in with_runc and "env -i" not in with_runc
    # both keep the common start (modules, network) and the power-off at the end
    for text in (default, with_runc):
        assert "insmod /lib/modules/layerbench/virtio_net.ko" in text
        assert text.rstrip().endswith("poweroff -f")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_archive_gets_the_runtime_its_missing_libraries_and_the_bundle(tmp_path, runtime):
    import io
    import stat

    from bench.images import guest_runtime
    from bench.images.initramfs import CpioWriter, parse_cpio
    from bench.images.rootfs import Rootfs

    if guest_runtime.find_runtime(runtime) is None:
        pytest.skip(f"{runtime} is not installed (apt-get install {runtime})")
    rootfs_dir = tmp_path / "rootfs"
    (rootfs_dir / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    (rootfs_dir / "lib" / "x86_64-linux-gnu" / "libc.so.6").write_bytes(b"the rootfs's libc")
    rootfs = Rootfs(path=rootfs_dir, digest="0" * 64, size_bytes=0, python="/usr/local/bin/python3.11", env=ENV)
    out = io.BytesIO()
    writer = CpioWriter(out)
    guest_runtime.add_to_archive(writer, rootfs, ARGV, ENV, runtime)
    writer.close()
    entries = {entry.name: entry for entry in parse_cpio(out.getvalue())}
    binary = in_guest(runtime).lstrip("/")
    assert entries[binary].data[:4] == b"\x7fELF" and entries[binary].mode & 0o111
    assert any(name.startswith("lib/x86_64-linux-gnu/libseccomp.so") for name in entries)  # both link it
    assert "lib/x86_64-linux-gnu/libc.so.6" not in entries  # the rootfs has it: not shipped twice
    for directory in ("run", "usr", "usr/sbin", "var/lib/layerbench/bundle/rootfs"):
        assert stat.S_ISDIR(entries[directory].mode), directory
    names = list(entries)
    assert names.index("usr") < names.index("usr/sbin") < names.index(binary)  # parents first
    bundle = json.loads(entries["var/lib/layerbench/bundle/config.json"].data)
    assert bundle["root"]["path"] == "rootfs" and bundle["process"]["user"]["uid"] == NOBODY_ID
    assert bundle["process"]["args"] == ARGV
