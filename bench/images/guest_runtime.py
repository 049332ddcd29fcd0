"""A container inside the VM: an OCI runtime (runc or crun), its libraries and a bundle in the guest.

    app -> namespaces + cgroups of the guest -> guest kernel -> QEMU -> hypervisor -> host kernel

The app's guest start (bench.apps.base.GuestStart: root, argv, environment, user) stays as the app
declared it; `container_guest` turns it into what the guest's init starts instead, a script under
/.layerbench that mounts a tmpfs for the runtime's state (/run) and cgroup2 at /sys/fs/cgroup,
then runs `<runtime> create` and `<runtime> start` on a bundle made from that very argv,
environment and user (bench.images.oci_bundle), stamping each on the serial console. The
container's root is the guest's own root directory, bound (not recursively: none of the guest's
/proc, /sys, /dev mounts) at the bundle's rootfs and mounted read-only: the app's own tree, so the
initramfs carries no second copy of it. The runtime needs --no-pivot: the guest's root is the
initramfs (rootfs), which pivot_root(2) refuses to move ("pivot_root .: invalid argument").

Debian's runc and crun are dynamically linked. The runtime goes under /.layerbench; the libraries
ldd names go at their own paths when the app's root lacks them (the python app's root has libc and
the loader already: only libseccomp is added for runc). The guest has cgroup v2 only, so crun runs
there even on a host where it cannot. The app is not a child of a runtime process: `create` exits
and the container's init (the app) is reparented to the guest's PID 1; the start script stays, one
`sleep 1` a second, only to tell init when the app has exited.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from pathlib import Path

from bench.images.guest_init import GUEST_BUSYBOX, GUEST_DIR, run_as
from bench.images.oci_bundle import config_json, oci_config

RUNTIME_CANDIDATES = {"runc": ("/usr/sbin/runc", "/usr/bin/runc"), "crun": ("/usr/bin/crun", "/usr/sbin/crun")}
RUNTIMES = tuple(RUNTIME_CANDIDATES)
PACKAGES = {"runc": "runc", "crun": "crun"}  # Debian packages, for the error that says how to fix it
BUNDLE_IN_GUEST = f"{GUEST_DIR}/bundle"  # holds config.json and rootfs/, where the script binds /
START_SCRIPT = f"{GUEST_DIR}/container-start"
PIVOT = "--no-pivot"  # pivot_root(2) cannot move the initramfs; the runtime then uses MS_MOVE + chroot
CONTAINER_ID = "app"
PID_FILE = "/run/app.pid"

MARKER_CGROUP = "layerbench: cgroup2 controllers"
MARKER_CREATE = "layerbench: container created"  # followed by runtime=<name> status=<exit> uptime_s=
MARKER_START = "layerbench: container started"


def in_guest(runtime: str) -> str:
    """Where the runtime's binary goes in the guest."""
    return f"{GUEST_DIR}/{runtime}"


def state_dir(runtime: str) -> str:
    """The runtime's --root in the guest: under the tmpfs the start script mounts at /run."""
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


def runtime_files(root: Path, runtime: str) -> dict[str, bytes]:
    """{path in the guest: content} for the runtime and the libraries ldd names that `root` lacks.

    FileNotFoundError when the runtime is not installed; ValueError when the root holds its own,
    different copy of a library the runtime needs (an image with another C library)."""
    from bench.images.rootfs import shared_libraries

    binary = find_runtime(runtime)
    if binary is None:
        raise FileNotFoundError(f"{runtime} is not installed (apt-get install {PACKAGES[runtime]})")
    files = {in_guest(runtime): binary.read_bytes()}
    for library in shared_libraries([binary]).values():
        host_copy = Path(os.path.realpath(library))
        own = Path(root) / library.lstrip("/")
        if not os.path.lexists(own):
            files[library] = host_copy.read_bytes()
        elif not own.is_symlink() and own.stat().st_size != host_copy.stat().st_size:
            raise ValueError(f"the app's root has its own {library}, not the host's: the host's {runtime} cannot "
                             f"run in its guest")
    return files


def bundle_config(guest) -> bytes:
    """config.json: the app's own argv, environment, user and folder, in the bundle's rootfs (the guest's root)."""
    argv = list(guest.argv)
    if guest.drops_own_privileges:  # the container starts it as its user already: no privilege left to drop
        drop = run_as(["python", "-c", ""], guest.uid)[2]
        argv = [arg.removeprefix(drop) for arg in argv]
    return config_json(oci_config(argv, dict(guest.env), uid=guest.uid, gid=guest.gid, root_path="rootfs",
                                  cwd=guest.workdir or "/"))


def container_guest(guest, runtime: str) -> tuple[object, dict[str, bytes]]:
    """What the guest's init starts instead of `guest` (a bench.apps.base.GuestStart): the start
    script, as root, with the app's port and ready line; and the files the initramfs adds for it."""
    files = runtime_files(guest.root, runtime)
    files[f"{BUNDLE_IN_GUEST}/config.json"] = bundle_config(guest)
    files[START_SCRIPT] = start_script(runtime).encode()
    started = dataclasses.replace(guest, argv=[GUEST_BUSYBOX, "sh", START_SCRIPT], env={}, uid=0, gid=0,
                                  workdir="/", drops_own_privileges=False)
    return started, files


def start_script(runtime: str) -> str:
    """The script init starts in the app's place: mounts, `<runtime> create` and `start`, each
    stamped; then it waits, a second at a time, for the app to exit (init watches the script)."""
    command = f"{in_guest(runtime)} --root {state_dir(runtime)}"
    bundle = shlex.quote(BUNDLE_IN_GUEST)
    return f"""# layerbench: the app in a {runtime} container inside the guest (bench.images.guest_runtime)
BB={GUEST_BUSYBOX}
up() {{ $BB cut -d' ' -f1 /proc/uptime; }}
# The runtime's state lives in a tmpfs; cgroup v2 holds the container's cgroup.
$BB mkdir -p /run {bundle}/rootfs
$BB mount -t tmpfs -o mode=0700,size=8m tmpfs /run
$BB mount -t cgroup2 cgroup2 /sys/fs/cgroup
read -r controllers </sys/fs/cgroup/cgroup.controllers
echo "{MARKER_CGROUP}: $controllers uptime_s=$(up)"
# The container's root: the guest's root without its mounts (a recursive bind would bring /sys, on
# which the runtime's own sysfs mount fails with EBUSY: the same superblock at the same place).
$BB mount -o bind / {bundle}/rootfs
{command} create {PIVOT} --pid-file {PID_FILE} --bundle {bundle} {CONTAINER_ID} </dev/null
echo "{MARKER_CREATE} runtime={runtime} status=$? uptime_s=$(up)"
{command} start {CONTAINER_ID}
echo "{MARKER_START} runtime={runtime} status=$? uptime_s=$(up)"
read -r pid <{PID_FILE}
while $BB kill -0 "$pid" 2>/dev/null; do $BB sleep 1; done
"""
