"""Kernel modules for the guest: pick the wanted ones and their dependencies out of a kernel
package, decompress them, and write a depmod-style modules.dep for them."""

from __future__ import annotations

import lzma
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

from bench.errors import KernelError

def module_name(path: str | Path) -> str:
    """'kernel/drivers/net/virtio_net.ko.xz' -> 'virtio_net' (dashes normalized to underscores)."""
    name = Path(path).name
    return name.split(".ko", 1)[0].replace("-", "_")


def read_module_bytes(path: Path) -> bytes:
    """A module file's ELF bytes, decompressing .ko.xz/.ko.gz/.ko.zst.

    Decompressed on the host because a kernel without CONFIG_MODULE_DECOMPRESS (and busybox
    insmod) cannot load compressed modules; the few modules we need are small either way.
    """
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        import gzip
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        if not shutil.which("zstd"):
            raise KernelError(f"{path.name} is zstd-compressed and no zstd binary is installed (apt-get install zstd)")
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    return data


def modinfo_depends(elf: bytes) -> list[str]:
    """The `depends=` list from a module's .modinfo strings (module names, maybe empty)."""
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", elf)
    if not match or not match.group(1):
        return []
    return [name.decode().replace("-", "_") for name in match.group(1).split(b",") if name]


def keep_modules(source_dir: Path, target_dir: Path, wanted: Iterable[str]) -> list[str]:
    """Copy the wanted modules and their dependencies (decompressed) and write modules.dep.

    Returns the kept names. Names that are built into the kernel (modules.builtin) are skipped.
    """
    index = {module_name(path): path for path in (source_dir / "kernel").rglob("*.ko*")}
    builtin = set()
    if (source_dir / "modules.builtin").is_file():
        builtin = {module_name(line) for line in (source_dir / "modules.builtin").read_text().split()}
    direct: dict[str, list[str]] = {}
    pending = [name for name in wanted if name not in builtin]
    while pending:
        name = pending.pop()
        if name in direct or name in builtin:
            continue
        if name not in index:
            raise KernelError(f"module {name} is neither built in nor shipped with the kernel")
        elf = read_module_bytes(index[name])
        relative = index[name].relative_to(source_dir).as_posix().split(".ko", 1)[0] + ".ko"
        (target_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (target_dir / relative).write_bytes(elf)
        direct[name] = [dep for dep in modinfo_depends(elf) if dep not in builtin]
        pending.extend(direct[name])
    relative_of = {name: index[name].relative_to(source_dir).as_posix().split(".ko", 1)[0] + ".ko" for name in direct}
    lines = []
    for name in sorted(direct):
        # depmod format: all transitive dependencies, the one to load first listed last.
        order = [dep for dep in _load_order(direct, [name]) if dep != name]
        lines.append(f"{relative_of[name]}: " + " ".join(relative_of[dep] for dep in reversed(order)))
    (target_dir / "modules.dep").write_text("\n".join(lines) + "\n")
    return sorted(direct)


def _load_order(direct: dict[str, list[str]], wanted: Iterable[str]) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise KernelError(f"module dependency cycle: {' -> '.join(path + (name,))}")
        for dep in direct.get(name, []):
            visit(dep, path + (name,))
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order


