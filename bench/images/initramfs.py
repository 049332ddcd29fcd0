"""The VM's initramfs: the app's root filesystem + busybox + an init script + the virtio-net modules.

The root filesystem is the app's (bench.apps: the python app's rootfs, nginx's tree, a user's
image's files); layerbench's own files go under /.layerbench so the app's stay as they are.
Written by a pure-Python "newc" cpio writer (bench.images.cpio), then compressed with lz4
(default), zstd or gzip, or left plain. Cached by (root digest, init script, kernel version,
compression) under `$XDG_CACHE_HOME/layerbench/initramfs/`. The init script is in
bench.images.guest_init.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from bench.images import cache_root
from bench.images.cpio import CpioEntry, CpioWriter, parse_cpio
from bench.images.guest_init import (DISK_CMDLINE, GUEST_BUSYBOX, GUEST_LIB_DIR, GUEST_LOADER,
                                     GUEST_MODULES_DIR, GUEST_SETPRIV, INIT_VERSION, MARKER_APP, MARKER_APP_EXITED,
                                     MARKER_DISK, MARKER_DISK_FAILED, MARKER_INIT, MARKER_NETWORK, init_script, run_as)
from bench.images.kernel import KernelInfo
from bench.images.kernel_modules import module_name
from bench.scratch import build_file

__all__ = ["DISK_CMDLINE", "MARKER_APP", "MARKER_APP_EXITED", "MARKER_DISK", "MARKER_DISK_FAILED", "MARKER_INIT",
           "MARKER_NETWORK", "CpioEntry", "CpioWriter", "Initramfs", "build_initramfs", "init_script",
           "module_load_order", "parse_cpio", "parse_modules_dep", "run_as"]

COMPRESSIONS = ("lz4", "zstd", "gzip", "none")
# lz4 (legacy frame, the one the kernel unpacks) is the default when the lz4 tool is installed:
# it decompresses fast enough under TCG to beat copying the uncompressed archive, and QEMU's copy
# of the file and the guest's copy of the archive both shrink; see the VM setup's docstring.
# Without the tool the archive is written uncompressed.
DEFAULT_COMPRESSION = "lz4"
_SUFFIXES = {"lz4": ".cpio.lz4", "zstd": ".cpio.zst", "gzip": ".cpio.gz", "none": ".cpio"}
# External compressors (the kernel's formats, not Python's): argv reading stdin, writing stdout.
_COMPRESSOR_ARGV = {"lz4": ("lz4", "-l", "-9", "-q", "-c"), "zstd": ("zstd", "-19", "-T0", "-q", "-c")}


def available_compression(wanted: str) -> str:
    """wanted, or "none" when its external tool (lz4, zstd) is not installed."""
    tool = _COMPRESSOR_ARGV.get(wanted)
    return "none" if tool and shutil.which(tool[0]) is None else wanted


def compress_in_place(path: Path, compression: str) -> None:
    """Replace the file at path with its lz4 (legacy frame) or zstd compression, via the tool."""
    packed_path = path.with_name(path.name + ".z")
    try:
        with open(path, "rb") as plain, open(packed_path, "wb") as packed:
            result = subprocess.run(_COMPRESSOR_ARGV[compression], stdin=plain, stdout=packed,
                                    stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{compression} failed: {result.stderr.decode(errors='replace').strip()}")
        os.replace(packed_path, path)
    finally:
        if packed_path.exists():
            packed_path.unlink()

DISK_MODULES = ("virtio_blk", "ext4")  # ext4 is built into Debian's cloud kernel: skipped there
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
SETPRIV = "/usr/bin/setpriv"  # util-linux's: the guest's init starts an app as its own user with it
# The network driver and, for `-machine microvm`, the virtio-mmio transport (harmless elsewhere).
WANTED_MODULES = ("virtio_mmio", "virtio_net")


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


def _user_switcher() -> dict[str, bytes]:
    """setpriv and its shared libraries (loader included) as {path in the guest: content}."""
    from bench.images.rootfs import shared_libraries

    if not os.access(SETPRIV, os.X_OK):
        raise FileNotFoundError(f"{SETPRIV} is missing (apt-get install util-linux); the VM starts this app's "
                                f"user with it")
    files = {GUEST_SETPRIV: Path(SETPRIV).read_bytes()}
    for name, library in shared_libraries([Path(SETPRIV)]).items():
        guest_path = GUEST_LOADER if "ld-linux" in Path(name).name else f"{GUEST_LIB_DIR}/{Path(name).name}"
        files[guest_path] = Path(os.path.realpath(library)).read_bytes()
    return files


def _guest_files(guest, kernel: KernelInfo, module_paths: list[str], busybox: Path) -> dict[str, bytes]:
    """Everything layerbench adds to the app's root, by path in the guest."""
    from bench.images.kernel_modules import read_module_bytes  # decompresses .ko.xz/.zst when needed

    files = {GUEST_BUSYBOX: busybox.read_bytes()}
    for path in module_paths:
        files[f"{GUEST_MODULES_DIR}/{module_name(path)}.ko"] = read_module_bytes(kernel.modules_dir / path)  # type: ignore[operator]
    if not guest.drops_own_privileges and (guest.uid, guest.gid) != (0, 0):
        files.update(_user_switcher())
    return files


def build_initramfs(guest, kernel: KernelInfo, compression: str = DEFAULT_COMPRESSION, cache_dir: Path | None = None,
                    progress: Callable[[str], None] = lambda message: None,
                    extra_files: dict[str, bytes] | None = None) -> Initramfs:
    """The initramfs that boots `guest` (a bench.apps.base.GuestStart: root filesystem, argv,
    environment, user) on this kernel: from the cache, or written (~1-3 s) and cached.
    `extra_files` ({path in the guest: content}) are added too (a container runtime and its bundle)."""
    extra_files = extra_files or {}
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    compression = available_compression(compression)
    busybox = find_busybox()
    if busybox is None:
        raise FileNotFoundError("busybox is not installed (apt-get install busybox-static)")
    modules_dep = ""
    if kernel.modules_dir and (kernel.modules_dir / "modules.dep").is_file():
        modules_dep = (kernel.modules_dir / "modules.dep").read_text()
    boot_paths = module_load_order(modules_dep, WANTED_MODULES)
    disk_paths = [path for path in module_load_order(modules_dep, DISK_MODULES) if path not in boot_paths]
    module_paths = boot_paths + disk_paths
    script = init_script([f"{module_name(path)}.ko" for path in boot_paths], guest,
                         [f"{module_name(path)}.ko" for path in disk_paths])
    key_source = "\n".join([f"initramfs {INIT_VERSION}", guest.digest, kernel.version, compression, script,
                            hashlib.sha256(busybox.read_bytes()).hexdigest(), *module_paths,
                            *(f"{path} {hashlib.sha256(data).hexdigest()}" for path, data in sorted(extra_files.items()))])
    digest = hashlib.sha256(key_source.encode()).hexdigest()
    final = (Path(cache_dir) if cache_dir is not None else cache_root()) / "initramfs" / \
        f"{digest[:32]}{_SUFFIXES[compression]}"
    names = tuple(module_name(path) for path in module_paths)
    if final.is_file():
        progress(f"initramfs {digest[:12]} already built")
        return Initramfs(final, digest, final.stat().st_size, compression, names)
    progress(f"writing initramfs {digest[:12]} ({compression})")
    _write(final, compression, guest.root, {**_guest_files(guest, kernel, module_paths, busybox), **extra_files}, script)
    return Initramfs(final, digest, final.stat().st_size, compression, names)


def _write(final: Path, compression: str, root: Path, files: dict[str, bytes], script: str) -> None:
    """Write the archive to a temp file next to `final`, compress it, and rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = build_file(final.parent, _SUFFIXES[compression])  # bench clean removes it once killed
    try:
        with os.fdopen(handle, "wb") as raw:
            out: BinaryIO = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) \
                if compression == "gzip" else io.BufferedWriter(raw, 1 << 20)  # type: ignore[arg-type]
            writer = CpioWriter(out)
            writer.add_tree(root, keep_owners=True)  # an image's files may belong to its own user
            # Our own entries come after the root: on unpacking, a later entry replaces an earlier one.
            for directory in ("dev", "proc", "sys", "tmp", *_parents(files)):
                writer.add_dir(directory, 0o1777 if directory == "tmp" else 0o755)
            writer.add_char_device("dev/console", 5, 1)  # init's stdio before devtmpfs is mounted
            for path, data in sorted(files.items()):
                writer.add_file(path.lstrip("/"), data, 0o644 if path.endswith(".ko") else 0o755)
            writer.add_file("init", script.encode(), 0o755)
            writer.close()
            out.close()
        if compression in _COMPRESSOR_ARGV:  # the archive was written plain: compress it in place
            compress_in_place(Path(temp_name), compression)
        os.replace(temp_name, final)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def _parents(files: dict[str, bytes]) -> list[str]:
    """Every folder the files need, parents first (the kernel does not create parents)."""
    folders = {str(parent).lstrip("/") for path in files for parent in Path(path).parents if str(parent) != "/"}
    return sorted(folders, key=lambda folder: (folder.count("/"), folder))


def clear_cache(cache_dir: Path | None = None) -> None:
    """Remove every cached initramfs (they rebuild on demand)."""
    shutil.rmtree((Path(cache_dir) if cache_dir is not None else cache_root()) / "initramfs", ignore_errors=True)
