"""The guest kernel for the VM setup: find one, or fetch Debian's cloud kernel once and cache it.

Order: an explicit `--kernel PATH`; else a kernel cached under
`$XDG_CACHE_HOME/layerbench/kernel/<version>/` (fetched with `apt-get download` + `dpkg -x`
when none is cached: no root needed once the apt lists exist); else a readable
`/boot/vmlinuz-*`. The cloud kernel is small and boots under TCG in ~1.6 s, but its virtio
network driver is a module, so the cache keeps the modules the guest needs (decompressed)
and a depmod-style `modules.dep` for them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.errors import KernelError
from bench.images import cache_root
from bench.images.kernel_modules import keep_modules
from bench.scratch import build_temporary

# Modules the guest may need: the network driver, and virtio-mmio for `-machine microvm`.
# Their dependencies are found from each module's own modinfo (the .deb ships no modules.dep).
# virtio_blk (and ext4, built into Debian's cloud kernel) serve the VM's optional disk.
GUEST_MODULES = ("virtio_net", "virtio_mmio", "virtio_blk", "ext4")
GUEST_MODULES_FILE = "modules.guest"  # in a cache entry: the GUEST_MODULES its modules/ was made for

_CLOUD_PACKAGE = re.compile(r"^linux-image-(\d+\.\d+\.\d+[-+][\w.+~-]*-cloud-amd64)(-unsigned)?$")


@dataclass(frozen=True)
class KernelInfo:
    path: Path  # the bzImage QEMU boots with -kernel
    version: str  # release string, as `uname -r` reports it inside the guest
    modules_dir: Path | None  # holds modules.dep and the module files it names; None: unknown
    source: str  # "explicit", "cache", "apt" (fetched just now) or "boot"


def kernel_cache_dir() -> Path:
    return cache_root() / "kernel"


# ---- finding a kernel ------------------------------------------------------------------


def find_kernel(explicit: Path | str | None = None, fetch: bool = True,
                progress: Callable[[str], None] = lambda message: None) -> KernelInfo:
    """The kernel the VM will boot; fetches the Debian cloud kernel when needed and allowed."""
    if explicit:
        return _explicit_kernel(Path(explicit))
    cached = _cached_kernel()
    if cached:
        if fetch and shutil.which("apt-get") and shutil.which("dpkg"):
            try:
                refresh_guest_modules(cached, progress)
            except (KernelError, OSError, subprocess.SubprocessError) as error:
                progress(f"warning: {error}")  # the cached modules still serve a VM without a disk
        return cached
    if fetch and shutil.which("apt-get") and shutil.which("dpkg"):
        try:
            return fetch_cloud_kernel(progress)
        except KernelError:
            if not _boot_kernels():
                raise
    boot = _boot_kernels()
    if boot:
        return boot[0]
    raise KernelError("no guest kernel: pass --kernel PATH, or let layerbench fetch Debian's cloud kernel "
                      "(needs apt-get and dpkg with apt lists: run `apt-get update`)")


def kernel_status() -> str:
    """One line for `bench doctor`: which kernel the VM would use, or how to get one. Never downloads."""
    cached = _cached_kernel()
    if cached:
        return f"guest kernel {cached.version} (cached in {cached.path.parent})"
    if shutil.which("apt-get") and shutil.which("dpkg"):
        package = newest_cloud_package()
        if package:
            return f"no guest kernel cached yet; {package} will be fetched with apt-get download on first VM run"
    boot = _boot_kernels()
    if boot:
        return f"guest kernel {boot[0].version} from {boot[0].path} (no virtio modules guaranteed)"
    return "no guest kernel: pass --kernel PATH, or run `apt-get update` so the cloud kernel can be fetched"


describe_kernel = kernel_status


def _explicit_kernel(path: Path) -> KernelInfo:
    if not path.is_file() or not os.access(path, os.R_OK):
        raise KernelError(f"--kernel {path}: not a readable file")
    version = bzimage_version(path)
    if not version:
        raise KernelError(f"--kernel {path}: not a bzImage (no Linux boot header); pass a vmlinuz file")
    modules_dir = None
    for candidate in (path.parent / "modules", Path("/lib/modules") / version):
        if (candidate / "modules.dep").is_file():
            modules_dir = candidate
            break
    return KernelInfo(path, version, modules_dir, "explicit")


def _cached_kernel() -> KernelInfo | None:
    root = kernel_cache_dir()
    if not root.is_dir():
        return None
    complete = [entry for entry in root.iterdir() if (entry / ".complete").is_file() and (entry / "vmlinuz").is_file()]
    if not complete:
        return None
    newest = max(complete, key=lambda entry: _version_key(entry.name))
    return KernelInfo(newest / "vmlinuz", newest.name, newest / "modules", "cache")


def _boot_kernels() -> list[KernelInfo]:
    found = []
    for path in Path("/boot").glob("vmlinuz-*"):
        if path.is_file() and os.access(path, os.R_OK):
            version = path.name[len("vmlinuz-"):]
            modules_dir = Path("/lib/modules") / version
            found.append(KernelInfo(path, version, modules_dir if (modules_dir / "modules.dep").is_file() else None,
                                    "boot"))
    return sorted(found, key=lambda info: _version_key(info.version), reverse=True)


def bzimage_version(path: Path) -> str | None:
    """The release string stored in a bzImage's boot header, or None if path is no bzImage."""
    with open(path, "rb") as handle:
        header = handle.read(0x400)
        if len(header) < 0x210 or header[0x202:0x206] != b"HdrS":
            return None
        offset = int.from_bytes(header[0x20E:0x210], "little") + 0x200
        handle.seek(offset)
        raw = handle.read(256).split(b"\0", 1)[0].decode(errors="replace")
    return raw.split(" ", 1)[0] or None


def _version_key(version: str) -> tuple[int, ...]:
    # "6.12.117+deb12-cloud-amd64" -> (6, 12, 117, 12); "6.1.0-56-cloud-amd64" -> (6, 1, 0, 56).
    return tuple(int(number) for number in re.findall(r"\d+", version.split("-cloud")[0]))


# ---- fetching Debian's cloud kernel ------------------------------------------------------


def newest_cloud_package() -> str | None:
    """Name of the newest linux-image-*-cloud-amd64 package apt knows (unsigned preferred)."""
    try:
        names = subprocess.run(["apt-cache", "pkgnames", "linux-image-"], capture_output=True, text=True,
                               timeout=60, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    by_version: dict[str, list[str]] = {}
    for name in names:
        match = _CLOUD_PACKAGE.match(name)
        if match:
            by_version.setdefault(match.group(1), []).append(name)
    if not by_version:
        return None
    newest = max(by_version, key=_version_key)
    # The unsigned image is the same kernel without the Secure Boot signature: either works for QEMU.
    return sorted(by_version[newest], key=lambda name: not name.endswith("-unsigned"))[0]


def fetch_cloud_kernel(progress: Callable[[str], None] = lambda message: None) -> KernelInfo:
    """apt-get download + dpkg -x the newest cloud kernel; cache vmlinuz and the guest modules."""
    package = newest_cloud_package()
    if not package:
        raise KernelError("apt knows no linux-image-*-cloud-amd64 package: run `apt-get update`, or pass --kernel")
    root = kernel_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    progress(f"fetching guest kernel {package} with apt-get download")
    with build_temporary(root, "fetch") as scratch_dir:  # named after this runner: bench clean removes it once killed
        unpacked = _download_and_unpack(package, scratch_dir)
        vmlinuz = sorted((unpacked / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise KernelError(f"{package} holds no /boot/vmlinuz-*")
        version = vmlinuz[0].name[len("vmlinuz-"):]
        staging = scratch_dir / version
        (staging / "modules").mkdir(parents=True)
        shutil.copy2(vmlinuz[0], staging / "vmlinuz")
        config = unpacked / "boot" / f"config-{version}"
        if config.is_file():
            shutil.copy2(config, staging / "config")
        source_modules = _package_modules_dir(unpacked, version)
        keep_modules(source_modules, staging / "modules", GUEST_MODULES)
        (staging / GUEST_MODULES_FILE).write_text("\n".join(GUEST_MODULES) + "\n")
        (staging / ".complete").write_text(package + "\n")
        final = root / version
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    progress(f"guest kernel {version} cached in {final}")
    return KernelInfo(final / "vmlinuz", version, final / "modules", "apt")


def _download_and_unpack(package: str, scratch_dir: Path) -> Path:
    """`apt-get download` a package into scratch_dir and `dpkg -x` it; the unpacked tree."""
    # apt-get download writes to the working directory; as root it warns about the _apt
    # sandbox user not reaching a private temp dir, which is harmless.
    result = subprocess.run(["apt-get", "download", "-q", package], cwd=scratch_dir, capture_output=True,
                            text=True, timeout=600, check=False)
    debs = list(scratch_dir.glob("*.deb"))
    if result.returncode != 0 or not debs:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise KernelError(f"apt-get download {package} failed: {last}")
    unpacked = scratch_dir / "unpacked"
    subprocess.run(["dpkg", "-x", str(debs[0]), str(unpacked)], check=True, capture_output=True, timeout=300)
    return unpacked


def refresh_guest_modules(info: KernelInfo, progress: Callable[[str], None] = lambda message: None) -> bool:
    """Re-cache a cached kernel's modules when GUEST_MODULES grew since it was fetched; True if done.

    Downloads the same package again (named in `.complete`) and swaps in a new modules/ dir;
    vmlinuz and vmlinux stay as they are.
    """
    entry = info.path.parent
    if info.source != "cache":
        return False
    try:
        have = set((entry / GUEST_MODULES_FILE).read_text().split())
    except OSError:
        have = set()
    if set(GUEST_MODULES) <= have:
        return False
    package = (entry / ".complete").read_text().strip()
    progress(f"fetching {package} again to cache more guest modules ({', '.join(GUEST_MODULES)})")
    with build_temporary(entry.parent, "modules") as scratch_dir:
        unpacked = _download_and_unpack(package, scratch_dir)
        fresh = scratch_dir / "modules"
        fresh.mkdir()
        keep_modules(_package_modules_dir(unpacked, info.version), fresh, GUEST_MODULES)
        try:  # the old dir moves into the scratch dir and goes with it
            (entry / "modules").rename(scratch_dir / "modules.old")
            fresh.rename(entry / "modules")
        except OSError as error:
            raise KernelError(f"cannot update the guest modules in {entry}: {error}") from None
    (entry / GUEST_MODULES_FILE).write_text("\n".join(GUEST_MODULES) + "\n")
    return True


def _package_modules_dir(unpacked: Path, version: str) -> Path:
    for base in ("lib/modules", "usr/lib/modules"):
        candidate = unpacked / base / version
        if candidate.is_dir():
            return candidate
    raise KernelError(f"the kernel package holds no modules for {version}")
