"""A container inside the VM: an OCI runtime (runc or crun), its libraries and a bundle in the initramfs.

    app -> namespaces + cgroups of the guest -> guest kernel -> QEMU -> hypervisor -> host kernel

The guest's init mounts a tmpfs for the runtime's state (/run) and cgroup2 at /sys/fs/cgroup, then
runs `<runtime> create` and `<runtime> start` on a bundle whose config comes from
bench.images.oci_bundle, and stamps each on the serial console. The container's root is the
guest's own root directory, bound (not recursively: none of the guest's /proc, /sys, /dev mounts)
at the bundle's rootfs and mounted read only: it holds the very rootfs the VM-alone app runs from
(plus busybox, the runtime and init), so the initramfs carries no second copy of it. The runtime
needs --no-pivot: the guest's root is the initramfs (rootfs), which pivot_root(2) refuses to move
("pivot_root .: invalid argument").

Debian's runc and crun are dynamically linked: their ldd closures go in at the same paths. The
guest has cgroup v2 only, so crun runs here although it fails on a cgroup v1 hybrid host. The app
is not a child of a runtime process: `create` exits and the container's init (the app) is
reparented to the guest's PID 1, so nothing of the runtime stays resident.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path

from bench.images.oci_bundle import config_json, oci_config
from bench.images.rootfs import NOBODY_ID, Rootfs, _shared_libraries

# Bump when the launch, the bundle or the added files change (with a hash of the launch lines,
# part of the initramfs cache key).
CONTAINER_INIT_VERSION = "1"
RUNTIME_CANDIDATES = {"runc": ("/usr/sbin/runc", "/usr/bin/runc"), "crun": ("/usr/bin/crun", "/usr/sbin/crun")}
RUNTIMES = tuple(RUNTIME_CANDIDATES)
PACKAGES = {"runc": "runc", "crun": "crun"}  # Debian packages, for the error that says how to fix it
BUNDLE_IN_GUEST = "/var/lib/layerbench/bundle"  # holds config.json and rootfs/, where init binds /
PIVOT = "--no-pivot"  # pivot_root(2) cannot move the initramfs; the runtime then uses MS_MOVE + chroot
CONTAINER_ID = "app"
VERBOSE_CMDLINE = "layerbench.verbose"  # on the kernel command line: init prints /proc/cgroups

MARKER_CGROUP = "layerbench: cgroup2 controllers"
MARKER_CREATE = "layerbench: container created"  # followed by runtime=<name> status=<exit> uptime_s=
MARKER_START = "layerbench: container started"


def in_guest(runtime: str) -> str:
    """Where the runtime's binary goes in the guest."""
    return f"/usr/sbin/{runtime}"


def state_dir(runtime: str) -> str:
    """The runtime's --root in the guest: under the tmpfs init mounts at /run."""
    return f"/run/{runtime}"


def find_runtime(runtime: str) -> Path | None:
    """The host's binary of this runtime, or None when it is not installed."""
    for candidate in RUNTIME_CANDIDATES[runtime]:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def runtime_version(runtime: str) -> str:
    """The first line of the host binary's --version ("runc version 1.1.5+ds1"), or "unknown"."""
    binary = find_runtime(runtime)
    if binary is None:
        return "unknown"
    try:
        result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = result.stdout.strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def runtime_files(rootfs: Rootfs, runtime: str) -> dict[str, Path]:
    """{path in the guest: host file} for the runtime and the libraries ldd names that the rootfs lacks."""
    binary = find_runtime(runtime)
    if binary is None:
        raise FileNotFoundError(f"{runtime} is not installed (apt-get install {PACKAGES[runtime]})")
    files = {in_guest(runtime): binary}
    for library in _shared_libraries([binary]).values():
        if not (rootfs.path / library.lstrip("/")).exists():  # libc and the loader: the rootfs has them
            files[library] = Path(os.path.realpath(library))
    return files


def key_parts(rootfs: Rootfs, runtime: str) -> list[str]:
    """What the initramfs cache key adds for a container guest: versions and each added file's digest."""
    launch = hashlib.sha256(launch_script("", runtime).encode()).hexdigest()  # a changed init builds anew
    parts = [f"container {runtime} {CONTAINER_INIT_VERSION} {launch}"]
    for guest_path, host_file in sorted(runtime_files(rootfs, runtime).items()):
        parts.append(f"{guest_path} {hashlib.sha256(host_file.read_bytes()).hexdigest()}")
    return parts


def bundle_config(app_argv: list[str], app_env: dict[str, str]) -> bytes:
    """config.json: the app's argv as uid 65534, in the bundle's rootfs (the guest's root, bound)."""
    return config_json(oci_config(app_argv, app_env, uid=NOBODY_ID, root_path="rootfs"))


def add_to_archive(writer, rootfs: Rootfs, app_argv: list[str], app_env: dict[str, str], runtime: str) -> None:
    """Add the runtime, its libraries, the bundle running app_argv and the /run mount point to an
    initramfs CpioWriter (rootfs: to leave out the libraries it already holds)."""
    files = runtime_files(rootfs, runtime)
    directories = {"run", f"{BUNDLE_IN_GUEST}/rootfs".lstrip("/"), *(str(Path(path).parent) for path in files)}
    for directory in sorted(_with_parents(directories)):
        writer.add_dir(directory)
    for guest_path, host_file in sorted(files.items()):
        writer.add_file(guest_path.lstrip("/"), host_file.read_bytes(), 0o755)
    writer.add_file(f"{BUNDLE_IN_GUEST.lstrip('/')}/config.json", bundle_config(app_argv, app_env), 0o644)


def _with_parents(directories: set[str]) -> set[str]:
    """Every directory and each of its parents, relative (the archive's names): the kernel makes no parents."""
    every = set()
    for directory in directories:
        parts = Path(directory.lstrip("/")).parts
        every.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return every


def launch_script(app_output_loop: str, runtime: str) -> str:
    """The init lines that start the app with the runtime (create, then start) and wait for it to exit.

    app_output_loop is the shell loop that copies the app's output to the console and stamps the
    moment it listens (bench.images.initramfs.APP_OUTPUT_LOOP).
    """
    command = f"{in_guest(runtime)} --root {state_dir(runtime)}"
    bundle = shlex.quote(BUNDLE_IN_GUEST)
    return f"""# The runtime's state lives in a tmpfs; cgroup v2 holds the container's cgroup.
$BB mount -t tmpfs -o mode=0700,size=8m tmpfs /run
$BB mount -t cgroup2 cgroup2 /sys/fs/cgroup
read -r controllers </sys/fs/cgroup/cgroup.controllers
echo "{MARKER_CGROUP}: $controllers"
read -r cmdline </proc/cmdline
case "$cmdline" in *{VERBOSE_CMDLINE}*) $BB cat /proc/cgroups ;; esac
# The container's root: the guest's root without its mounts (a recursive bind would bring /sys, on
# which the runtime's own sysfs mount fails with EBUSY: the same superblock at the same place).
$BB mount -o bind / {bundle}/rootfs
# The reader opens the fifo first (in the background): the runtime's stdout, handed on to the app,
# is its writer.
{app_output_loop} </tmp/app.out &
{command} create {PIVOT} --bundle {bundle} {CONTAINER_ID} >/tmp/app.out 2>&1 </dev/null
echo "{MARKER_CREATE} runtime={runtime} status=$? uptime_s=$(up)"
{command} start {CONTAINER_ID}
echo "{MARKER_START} runtime={runtime} status=$? uptime_s=$(up)"
wait"""
