"""The OCI runtime config (config.json) that runs the app in a container inside the VM.

Pure: argv, environment and user in, a dict out (`runc spec` 1.0.2 as the base, then locked down
like the host container setup: uid 65534, no capabilities, no new privileges, a read-only root
and a tmpfs at /tmp). No "network" namespace is listed, so the container shares the guest's
network namespace: QEMU's port forward reaches the app as it reaches the VM-alone app.

Left out on purpose, and so different from Docker's container: no seccomp profile (Docker's
default filters syscalls; runc applies none unless the config holds one) and no AppArmor.
"""

from __future__ import annotations

import json

OCI_VERSION = "1.0.2-dev"  # what Debian 12's runc 1.1.5 writes with `runc spec`
CGROUPS_PATH = "/layerbench"  # under the guest's cgroup2 mount; runc creates it
NOFILE = 1024  # runc's default; the app under 8-64 connections needs a few dozen

# Docker's and runc's defaults: kernel interfaces a container has no business reading or writing.
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
NAMESPACES = ("pid", "ipc", "uts", "mount")  # not "network": the guest's stack, as --network host


def oci_config(args: list[str], env: dict[str, str], uid: int, gid: int | None = None, root_path: str = "rootfs",
               cwd: str = "/tmp", hostname: str = "layerbench", tmp_size_mb: int = 64) -> dict:
    """The config.json content for running args as uid:gid in root_path (relative to the bundle, or absolute)."""
    if not args:
        raise ValueError("the container needs a command (args is empty)")
    if uid < 0 or (gid is not None and gid < 0):
        raise ValueError(f"uid and gid must be >= 0, got {uid}:{gid}")
    if not cwd.startswith("/"):
        raise ValueError(f"cwd must be absolute, got {cwd!r}")
    if tmp_size_mb <= 0:
        raise ValueError(f"tmp_size_mb must be positive, got {tmp_size_mb}")
    no_capabilities = {name: [] for name in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": uid if gid is None else gid, "additionalGids": []},
            "args": list(args),
            "env": [f"{key}={value}" for key, value in sorted(env.items())],
            "cwd": cwd,
            "capabilities": no_capabilities,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": NOFILE, "soft": NOFILE}],
            "noNewPrivileges": True,
        },
        "root": {"path": root_path, "readonly": True},
        "hostname": hostname,
        "mounts": _mounts(tmp_size_mb),
        "linux": {
            "cgroupsPath": CGROUPS_PATH,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},  # runc adds /dev/null & co.
            "namespaces": [{"type": kind} for kind in NAMESPACES],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def _mounts(tmp_size_mb: int) -> list[dict]:
    def mount(destination: str, kind: str, source: str, *options: str) -> dict:
        return {"destination": destination, "type": kind, "source": source, "options": list(options)}

    return [
        mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"),
        mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
        # The app's scratch space (/io writes here): the root stays read-only, as in the host container.
        mount("/tmp", "tmpfs", "tmpfs", "nosuid", "nodev", "mode=1777", f"size={tmp_size_mb}m"),
    ]


def config_json(config: dict) -> bytes:
    """config.json bytes, key order kept and indented: the same config gives the same bytes (cache keys)."""
    return (json.dumps(config, indent=2) + "\n").encode()
