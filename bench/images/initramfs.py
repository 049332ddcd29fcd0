"""The VM's initramfs: the shared rootfs + busybox + an init script + the virtio-net modules.

Written as a "newc" cpio archive (bench.images.cpio: the format the kernel unpacks into its rootfs
tmpfs), then compressed with lz4 (default), zstd or gzip, or left plain. Cached by (rootfs digest, kernel version, init version,
compression) under `$XDG_CACHE_HOME/layerbench/initramfs/`.

The init is busybox's sh (a static binary, no libraries): it mounts proc/sys/devtmpfs, loads
the modules, configures eth0 as QEMU's user-mode network expects (10.0.2.15/24 via 10.0.2.2),
and starts the app as `nobody`. It prints timestamped markers on the serial console so the
host can split start-up: "layerbench: init started", "layerbench: app listening".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from bench.images import cache_root
from bench.images.cpio import (COMPRESSOR_ARGV, CpioEntry, CpioWriter, available_compression, compress_in_place,
                               parse_cpio)
from bench.images.kernel import KernelInfo
from bench.images.kernel_modules import module_name
from bench.images.rootfs import NOBODY_ID, Rootfs

__all__ = ["APP_OUTPUT_LOOP", "COMPRESSIONS", "DEFAULT_COMPRESSION", "DISK_CMDLINE", "DISK_MODULES", "CpioEntry",
           "CpioWriter", "Initramfs", "MARKER_APP", "MARKER_APP_EXITED", "MARKER_DISK", "MARKER_DISK_FAILED",
           "MARKER_INIT", "MARKER_NETWORK", "available_compression", "build_initramfs", "clear_cache",
           "compress_in_place", "find_busybox", "init_script", "module_load_order", "parse_cpio", "parse_modules_dep",
           "run_as"]

# Bump when the init script, the layout or the module handling changes: a new initramfs builds.
INIT_VERSION = "2"
COMPRESSIONS = ("lz4", "zstd", "gzip", "none")
# lz4 (legacy frame, the one the kernel unpacks) is the default when the lz4 tool is installed:
# it decompresses fast enough under TCG to beat copying the uncompressed archive, and QEMU's copy
# of the file and the guest's copy of the archive both shrink; see the VM setup's docstring.
# Without the tool the archive is written uncompressed.
DEFAULT_COMPRESSION = "lz4"
_SUFFIXES = {"lz4": ".cpio.lz4", "zstd": ".cpio.zst", "gzip": ".cpio.gz", "none": ".cpio"}

MARKER_INIT = "layerbench: init started"
MARKER_NETWORK = "layerbench: network up"
MARKER_APP = "layerbench: app listening"
MARKER_APP_EXITED = "layerbench: app exited"
# Copies the app's output (stdin) to the console and stamps the moment it says it listens.
APP_OUTPUT_LOOP = f"""while IFS= read -r line; do
    echo "$line"
    case "$line" in
        *"listening on"*) echo "{MARKER_APP} uptime_s=$(up)" ;;
    esac
done"""
MARKER_DISK = "layerbench: disk mounted"
MARKER_DISK_FAILED = "layerbench: disk failed"
# On the kernel command line when the VM has a disk (/dev/vda, ext4 made on the host): init then
# loads DISK_MODULES and mounts it at /tmp before the app starts. Without it nothing changes.
DISK_CMDLINE = "layerbench.disk=vda"
DISK_MODULES = ("virtio_blk", "ext4")  # ext4 is built into Debian's cloud kernel: skipped there

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
GUEST_MODULES_DIR = "/lib/modules/layerbench"  # inside the guest: the .ko files, already ordered
# The network driver and, for `-machine microvm`, the virtio-mmio transport (harmless elsewhere).
WANTED_MODULES = ("virtio_mmio", "virtio_net")

GUEST_IP = "10.0.2.15/24"  # QEMU user-mode networking's fixed plan
GUEST_GATEWAY = "10.0.2.2"

# ---- modules ----------------------------------------------------------------------------


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """depmod's modules.dep -> {module path: [dependency paths, the one loaded first last]}."""
    table = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        module, deps = line.split(":", 1)
        table[module.strip()] = deps.split()
    return table


def module_load_order(modules_dep: str, wanted: Iterable[str]) -> list[str]:
    """Module paths to insmod, dependencies first, for the wanted module names.

    A wanted name missing from modules.dep is taken as built into the kernel and skipped.
    """
    table = parse_modules_dep(modules_dep)
    path_of = {module_name(path): path for path in table}
    order: list[str] = []

    def visit(path: str, chain: tuple[str, ...]) -> None:
        if path in order:
            return
        if path in chain:
            raise ValueError(f"module dependency cycle: {' -> '.join(chain + (path,))}")
        # modules.dep lists a module's dependencies so that the last one is loaded first.
        for dep in reversed(table.get(path, [])):
            visit(dep, chain + (path,))
        order.append(path)

    for name in wanted:
        name = name.replace("-", "_")
        if name in path_of:
            visit(path_of[name], ())
    return order


# ---- the init script --------------------------------------------------------------------


def run_as(app_argv: list[str], uid: int) -> list[str]:
    """app_argv changed to drop root for uid/gid before the app runs, when it is `python ... -c CODE`.

    busybox's setpriv lacks --reuid and su needs a login shell; the interpreter can drop privileges
    itself at no extra start-up cost. Any other argv is returned unchanged (the app runs as root).
    """
    if "-c" not in app_argv[:-1]:
        return app_argv
    index = app_argv.index("-c") + 1
    drop = f"import os; os.setgroups([]); os.setgid({uid}); os.setuid({uid}); "
    return app_argv[:index] + [drop + app_argv[index]] + app_argv[index + 1:]



def init_script(modules: list[str], app_argv: list[str], app_env: dict[str, str], port: int,
                disk_modules: Iterable[str] = (), launch: str | None = None) -> str:
    """The busybox sh script run as /init (PID 1); `modules` are .ko names in load order.

    `disk_modules` are loaded only when the kernel command line holds DISK_CMDLINE. `launch`
    replaces the lines that start the app and wait for it (bench.images.guest_runtime's container).
    """
    app_argv = run_as(app_argv, NOBODY_ID)
    env = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(app_env.items()))
    argv = " ".join(shlex.quote(arg) for arg in app_argv)
    insmods = "\n".join(f'$BB insmod {GUEST_MODULES_DIR}/{name} || echo "layerbench: insmod {name} failed"'
                        for name in modules)
    disk_insmods = "".join(f'\n    $BB insmod {GUEST_MODULES_DIR}/{name} || echo "layerbench: insmod {name} failed"'
                           for name in disk_modules)
    # With a disk, the app's temp files must really land on it: a disk that does not mount
    # powers the guest off (the host then reports the console) rather than measuring RAM.
    disk = f"""if $BB grep -qF {DISK_CMDLINE} /proc/cmdline; then{disk_insmods}
    n=0
    while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do $BB usleep 20000; n=$((n + 1)); done
    if $BB mount -t ext4 /dev/vda /tmp && $BB chmod 1777 /tmp; then
        echo "{MARKER_DISK} uptime_s=$(up) $($BB grep ' /tmp ' /proc/mounts)"
    else
        echo "{MARKER_DISK_FAILED}: cannot mount /dev/vda on /tmp"
        $BB poweroff -f
    fi
fi"""
    if launch is None:
        launch = f"""# The app runs as nobody, a direct child of this shell (so its ppid is 1); its output comes back
# through a fifo so this shell can stamp the moment it says it listens.
$BB env -i {env} {argv} >/tmp/app.out 2>&1 &
{APP_OUTPUT_LOOP} </tmp/app.out
wait"""
    return f"""#!/bin/busybox sh
# layerbench init {INIT_VERSION}: PID 1 of the VM. Markers carry the guest's uptime in seconds.
BB=/bin/busybox
$BB mount -t proc proc /proc
up() {{ $BB cut -d' ' -f1 /proc/uptime; }}
echo "{MARKER_INIT} uptime_s=$(up)"
$BB mount -t sysfs sysfs /sys
$BB mount -t devtmpfs devtmpfs /dev
{insmods}
$BB ip link set lo up
$BB ip link set eth0 up
$BB ip addr add {GUEST_IP} dev eth0
$BB ip route add default via {GUEST_GATEWAY}
echo "{MARKER_NETWORK} uptime_s=$(up)"
{disk}
cd /tmp
$BB mkfifo /tmp/app.out
{launch}
echo "{MARKER_APP_EXITED} status=$? uptime_s=$(up)"
# PID 1 must not exit (kernel panic); power off so QEMU exits and the host sees it at once.
$BB poweroff -f
"""


# ---- building -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Initramfs:
    path: Path
    digest: str  # the cache key (sha256 hex)
    size_bytes: int  # of the file QEMU loads (compressed if compressed)
    compression: str  # one of COMPRESSIONS (what was written: "none" if the tool was missing)
    modules: tuple[str, ...]  # module names insmod'ed by init, in order


def find_busybox() -> Path | None:
    for candidate in BUSYBOX_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def build_initramfs(rootfs: Rootfs, kernel: KernelInfo, compression: str = DEFAULT_COMPRESSION,
                    port: int = 8080, cache_dir: Path | None = None,
                    progress: Callable[[str], None] = lambda message: None,
                    container_runtime: str | None = None) -> Initramfs:
    """The initramfs for this rootfs and kernel: from the cache, or written (~1-3 s) and cached.
    container_runtime "runc"/"crun": the app runs in a container in the guest (bench.images.guest_runtime)."""
    from bench.images import guest_runtime

    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if container_runtime not in (None, *guest_runtime.RUNTIMES):
        raise ValueError(f"container_runtime must be None or one of {guest_runtime.RUNTIMES}, "
                         f"got {container_runtime!r}")
    compression = available_compression(compression)
    busybox = find_busybox()
    if busybox is None:
        raise FileNotFoundError("busybox is not installed (apt-get install busybox-static)")
    boot_paths, disk_paths = _module_paths(kernel)
    busybox_bytes = busybox.read_bytes()
    key_source = "\n".join([f"initramfs {INIT_VERSION}", rootfs.digest, kernel.version, compression, str(port),
                            hashlib.sha256(busybox_bytes).hexdigest(), *boot_paths, *disk_paths,
                            *(guest_runtime.key_parts(rootfs, container_runtime) if container_runtime else [])])
    digest = hashlib.sha256(key_source.encode()).hexdigest()
    suffix = _SUFFIXES[compression]
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    final = cache / "initramfs" / f"{digest[:32]}{suffix}"
    names = tuple(module_name(path) for path in boot_paths + disk_paths)
    if final.is_file():
        progress(f"initramfs {digest[:12]} already built")
        return Initramfs(final, digest, final.stat().st_size, compression, names)
    progress(f"writing initramfs {digest[:12]} ({compression})")
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=final.parent)
    try:
        with os.fdopen(handle, "wb") as raw:
            out: BinaryIO = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) \
                if compression == "gzip" else io.BufferedWriter(raw, 1 << 20)  # type: ignore[arg-type]
            _write_archive(CpioWriter(out), rootfs, kernel, busybox_bytes, (boot_paths, disk_paths), port,
                           container_runtime)
            out.close()
        if compression in COMPRESSOR_ARGV:  # the archive was written plain: compress it in place
            compress_in_place(Path(temp_name), compression)
        os.replace(temp_name, final)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    return Initramfs(final, digest, final.stat().st_size, compression, names)


def _module_paths(kernel: KernelInfo) -> tuple[list[str], list[str]]:
    """(modules init always loads, the disk's modules it loads only with a disk), paths in load order."""
    modules_dep = ""
    if kernel.modules_dir and (kernel.modules_dir / "modules.dep").is_file():
        modules_dep = (kernel.modules_dir / "modules.dep").read_text()
    boot_paths = module_load_order(modules_dep, WANTED_MODULES)
    return boot_paths, [path for path in module_load_order(modules_dep, DISK_MODULES) if path not in boot_paths]


def _write_archive(writer: CpioWriter, rootfs: Rootfs, kernel: KernelInfo, busybox_bytes: bytes,
                   modules: tuple[list[str], list[str]], port: int, container_runtime: str | None) -> None:
    """Everything the guest needs, in one cpio stream: the rootfs, then our entries (a later entry
    replaces an earlier one on unpacking), then /init."""
    from bench.images import guest_runtime
    from bench.images.kernel_modules import read_module_bytes  # decompresses .ko.xz/.zst when needed

    boot_paths, disk_paths = modules
    writer.add_tree(rootfs.path)
    for directory in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", GUEST_MODULES_DIR.lstrip("/")):
        writer.add_dir(directory, 0o1777 if directory == "tmp" else 0o755)
    writer.add_char_device("dev/console", 5, 1)  # init's stdio before devtmpfs is mounted
    writer.add_file("bin/busybox", busybox_bytes, 0o755)
    for path in boot_paths + disk_paths:
        writer.add_file(f"{GUEST_MODULES_DIR.lstrip('/')}/{module_name(path)}.ko",
                        read_module_bytes(kernel.modules_dir / path), 0o644)  # type: ignore[operator]
    # The app, in the one place the guest learns it: its argv and environment, run directly by
    # init or (container_runtime) by an OCI runtime from a bundle made of the same argv.
    app_argv, app_env = rootfs.app_argv("0.0.0.0", port), rootfs.env
    launch = None
    if container_runtime:  # the runtime, its libraries and the OCI bundle; init starts the app with it
        guest_runtime.add_to_archive(writer, rootfs, app_argv, app_env, container_runtime)
        launch = guest_runtime.launch_script(APP_OUTPUT_LOOP, container_runtime)
    script = init_script([f"{module_name(path)}.ko" for path in boot_paths], app_argv, app_env, port,
                         [f"{module_name(path)}.ko" for path in disk_paths], launch)
    writer.add_file("init", script.encode(), 0o755)
    writer.close()


def clear_cache(cache_dir: Path | None = None) -> None:
    """Remove every cached initramfs (they rebuild on demand)."""
    shutil.rmtree((Path(cache_dir) if cache_dir is not None else cache_root()) / "initramfs", ignore_errors=True)
