"""A container inside the VM: runc, its libraries and an OCI bundle added to the initramfs.

    app -> namespaces + cgroups of the guest -> guest kernel -> QEMU -> hypervisor -> host kernel

The guest's init mounts a tmpfs for runc's state (/run) and cgroup2 at /sys/fs/cgroup, then runs
`runc create` and `runc start` on a bundle whose config comes from bench.images.oci_bundle, and
stamps each on the serial console. The container's root is the guest's own root directory, bound
(not recursively: none of the guest's /proc, /sys, /dev mounts) at the bundle's rootfs and mounted
read only: it holds the very rootfs the VM-alone app runs from (plus busybox, runc and init), so
the initramfs carries no second copy of it. runc needs --no-pivot: the guest's root is the
initramfs (rootfs), and pivot_root(2) refuses to move it.

Debian's runc is dynamically linked (libseccomp, libc): its ldd closure goes in at the same paths.
The app is not a child of a runc process: `runc create` exits and the container's init (the app)
is reparented to the guest's PID 1, so nothing of runc stays resident.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path

from bench.images.oci_bundle import config_json, oci_config
from bench.images.rootfs import NOBODY_ID, Rootfs, _shared_libraries

# Bump when the runc launch, the bundle or the added files change (part of the initramfs cache key).
CONTAINER_INIT_VERSION = "1"
RUNTIMES = ("runc",)
RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc")
RUNC_IN_GUEST = "/usr/sbin/runc"
BUNDLE_IN_GUEST = "/var/lib/layerbench/bundle"  # holds config.json and rootfs/, where init binds /
PIVOT = "--no-pivot"  # pivot_root(2) cannot move the initramfs; runc then uses MS_MOVE + chroot
STATE_IN_GUEST = "/run/runc"  # runc --root: a tmpfs the init mounts
CONTAINER_ID = "app"
VERBOSE_CMDLINE = "layerbench.verbose"  # on the kernel command line: init prints /proc/cgroups

MARKER_CGROUP = "layerbench: cgroup2 controllers"
MARKER_RUNC_CREATE = "layerbench: runc create done"
MARKER_RUNC_START = "layerbench: runc start done"


def find_runc() -> Path | None:
    for candidate in RUNC_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def runc_files(rootfs: Rootfs) -> dict[str, Path]:
    """{path in the guest: host file} for runc and the libraries ldd names that the rootfs lacks."""
    runc = find_runc()
    if runc is None:
        raise FileNotFoundError("runc is not installed (apt-get install runc)")
    files = {RUNC_IN_GUEST: runc}
    for name, library in _shared_libraries([runc]).items():
        if not (rootfs.path / library.lstrip("/")).exists():  # libc and the loader: the rootfs has them
            files[library] = Path(os.path.realpath(library))
    return files


def key_parts(rootfs: Rootfs) -> list[str]:
    """What the initramfs cache key adds for a runc guest: the version and each added file's digest."""
    launch = hashlib.sha256(launch_script("").encode()).hexdigest()  # a changed init builds a new image
    parts = [f"container runc {CONTAINER_INIT_VERSION} {launch}"]
    for guest_path, host_file in sorted(runc_files(rootfs).items()):
        parts.append(f"{guest_path} {hashlib.sha256(host_file.read_bytes()).hexdigest()}")
    return parts


def bundle_config(rootfs: Rootfs, port: int) -> bytes:
    """config.json: the app on 0.0.0.0:port as uid 65534, in the bundle's rootfs (the guest's root, bound)."""
    return config_json(oci_config(rootfs.app_argv("0.0.0.0", port), rootfs.env, uid=NOBODY_ID, root_path="rootfs"))


def add_to_archive(writer, rootfs: Rootfs, port: int) -> None:
    """Add runc, its libraries, the bundle and the /run mount point to an initramfs CpioWriter."""
    files = runc_files(rootfs)
    directories = {"run", f"{BUNDLE_IN_GUEST}/rootfs".lstrip("/"), *(_parents(path) for path in files)}
    for directory in sorted(_all_parents(directories)):
        writer.add_dir(directory)
    for guest_path, host_file in sorted(files.items()):
        writer.add_file(guest_path.lstrip("/"), host_file.read_bytes(), 0o755)
    writer.add_file(f"{BUNDLE_IN_GUEST.lstrip('/')}/config.json", bundle_config(rootfs, port), 0o644)


def _parents(path: str) -> str:
    return str(Path(path).parent).lstrip("/")


def _all_parents(directories: set[str]) -> set[str]:
    every = set()
    for directory in directories:
        parts = Path(directory).parts
        every.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return every


def launch_script(marker_app_loop: str) -> str:
    """The init lines that start the app with runc (create, then start) and wait for it to exit.

    marker_app_loop is the shell loop that copies the app's output to the console and stamps
    the moment it listens (bench.images.initramfs.APP_OUTPUT_LOOP).
    """
    runc = f"{RUNC_IN_GUEST} --root {STATE_IN_GUEST}"
    bundle = shlex.quote(BUNDLE_IN_GUEST)
    return f"""# runc's state lives in a tmpfs; cgroup v2 holds the container's cgroup.
$BB mount -t tmpfs -o mode=0700,size=8m tmpfs /run
$BB mount -t cgroup2 cgroup2 /sys/fs/cgroup
# The container's root: the guest's root without its mounts (a recursive bind would bring /sys, on
# which runc's own sysfs mount fails with EBUSY: the same superblock at the same place).
$BB mount -o bind / {bundle}/rootfs
read -r controllers </sys/fs/cgroup/cgroup.controllers
echo "{MARKER_CGROUP}: $controllers"
read -r cmdline </proc/cmdline
case "$cmdline" in *{VERBOSE_CMDLINE}*) $BB cat /proc/cgroups ;; esac
# The reader opens the fifo first (in the background): runc's stdout, handed on to the app, is its writer.
{marker_app_loop} </tmp/app.out &
{runc} create {PIVOT} --bundle {bundle} {CONTAINER_ID} >/tmp/app.out 2>&1 </dev/null
echo "{MARKER_RUNC_CREATE} status=$? uptime_s=$(up)"
{runc} start {CONTAINER_ID}
echo "{MARKER_RUNC_START} status=$? uptime_s=$(up)"
wait"""
