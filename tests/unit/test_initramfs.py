"""The initramfs pieces that need no QEMU: the newc cpio writer, module ordering, the init script."""

from __future__ import annotations

import io
import lzma
import re
import stat
import subprocess
from pathlib import Path

import pytest

from bench.images.initramfs import (MARKER_APP, MARKER_INIT, CpioEntry, CpioWriter, init_script, module_load_order,
                                    parse_cpio, parse_modules_dep, run_as)
from bench.apps.base import GuestStart
from bench.images.initramfs import find_busybox
from bench.images.kernel import bzimage_version
from bench.images.kernel_modules import modinfo_depends, module_name, read_module_bytes
from tests.conftest import require

# Debian 6.1 cloud kernel style: virtio itself is modular, deps listed "load last-listed first".
MODULES_DEP_6_1 = """\
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko \
kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
"""


def _archive(entries: list[CpioEntry]) -> bytes:
    buffer = io.BytesIO()
    writer = CpioWriter(buffer)
    for entry in entries:
        writer.add(entry)
    writer.close()
    return buffer.getvalue()


def test_cpio_round_trip_keeps_names_modes_sizes_and_data():
    entries = [
        CpioEntry("bin", stat.S_IFDIR | 0o755),
        CpioEntry("tmp", stat.S_IFDIR | 0o1777),
        *(CpioEntry(f"bin/file{size}", stat.S_IFREG | 0o644, bytes(range(size))) for size in (0, 1, 2, 3, 4, 5, 255)),
        CpioEntry("init", stat.S_IFREG | 0o755, b"#!/bin/busybox sh\n"),
        CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        CpioEntry("a-name-of-odd-length/x", stat.S_IFREG | 0o600, b"x", uid=65534, gid=65534),
    ]
    archive = _archive(entries)
    assert parse_cpio(archive) == entries  # parse_cpio also checks every header is 4-byte aligned
    assert len(archive) % 4 == 0


def test_cpio_ends_with_trailer_and_headers_are_aligned():
    archive = _archive([CpioEntry("abc", stat.S_IFREG | 0o644, b"12345")])
    assert b"TRAILER!!!\0" in archive[-128:]
    trailer_header = archive.rindex(b"070701")
    assert trailer_header % 4 == 0
    assert archive[trailer_header + 6 + 6 * 8: trailer_header + 6 + 7 * 8] == b"00000000"  # filesize 0
    first_data = 110 + len(b"abc\0")
    assert archive[first_data + (-first_data % 4):][:5] == b"12345"


def test_cpio_writer_helpers_and_tree(tmp_path):
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "libx.so").write_bytes(b"\x7fELF")
    (tmp_path / "usr" / "lib" / "libx.so.1").symlink_to("libx.so")
    (tmp_path / "usr" / "lib" / "libx.so").chmod(0o755)
    buffer = io.BytesIO()
    writer = CpioWriter(buffer)
    writer.add_tree(tmp_path)
    writer.add_char_device("dev/console", 5, 1)
    writer.close()
    writer.close()  # idempotent: one trailer only
    parsed = parse_cpio(buffer.getvalue())
    names = [entry.name for entry in parsed]
    assert names == ["usr", "usr/lib", "usr/lib/libx.so", "usr/lib/libx.so.1", "dev/console"]
    by_name = {entry.name: entry for entry in parsed}
    assert stat.S_ISDIR(by_name["usr"].mode)
    assert stat.S_IMODE(by_name["usr/lib/libx.so"].mode) == 0o755 and by_name["usr/lib/libx.so"].data == b"\x7fELF"
    assert stat.S_ISLNK(by_name["usr/lib/libx.so.1"].mode) and by_name["usr/lib/libx.so.1"].data == b"libx.so"
    assert stat.S_ISCHR(by_name["dev/console"].mode) and by_name["dev/console"].rdev == (5, 1)
    assert buffer.getvalue().count(b"TRAILER!!!") == 1


@pytest.mark.parametrize("compression, magic", [("lz4", b"\x02\x21\x4c\x18"), ("zstd", b"\x28\xb5\x2f\xfd")])
def test_compress_in_place_writes_the_kernels_format(tmp_path, compression, magic):
    import shutil
    import subprocess

    from bench.images.initramfs import available_compression, compress_in_place

    tool = {"lz4": "lz4", "zstd": "zstd"}[compression]
    if shutil.which(tool) is None:
        assert available_compression(compression) == "none"
    require(shutil.which(tool) is not None, f"{tool} (apt-get install {tool})")
    archive = _archive([CpioEntry("init", stat.S_IFREG | 0o755, b"#!/bin/busybox sh\n" * 1000)])
    path = tmp_path / "initrd"
    path.write_bytes(archive)
    compress_in_place(path, compression)
    packed = path.read_bytes()
    assert packed[:4] == magic and len(packed) < len(archive)  # lz4: the legacy frame the kernel reads
    assert subprocess.run([tool, "-d", "-c"], input=packed, capture_output=True, check=True).stdout == archive
    assert [p.name for p in tmp_path.iterdir()] == ["initrd"]


def test_parse_cpio_rejects_garbage():
    with pytest.raises(ValueError):
        parse_cpio(b"not a cpio archive at all")


def test_module_order_from_modules_dep_puts_dependencies_first():
    order = [module_name(path) for path in module_load_order(MODULES_DEP_6_1, ["virtio_pci", "virtio_net"])]
    assert order == ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
                     "failover", "net_failover", "virtio_net"]
    table = parse_modules_dep(MODULES_DEP_6_1)
    for module, deps in table.items():  # every module comes after all it depends on
        loaded = module_load_order(MODULES_DEP_6_1, [module_name(module)])
        assert loaded[-1] == module and all(loaded.index(dep) < loaded.index(module) for dep in deps)


def test_module_order_skips_built_in_and_normalizes_names():
    # 6.12 cloud kernel: virtio and virtio_pci are built in, so modules.dep only knows the rest.
    dep = "kernel/net/core/failover.ko:\nkernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n" \
          "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"
    assert module_load_order(dep, ["virtio_pci", "virtio-net"]) == [
        "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"]
    assert module_load_order("", ["virtio_net"]) == []
    assert module_name("kernel/drivers/block/virtio_blk.ko.xz") == "virtio_blk"


def test_module_order_reports_a_cycle():
    with pytest.raises(ValueError, match="cycle"):
        module_load_order("a.ko: b.ko\nb.ko: a.ko\n", ["a"])


def test_modinfo_depends_and_compressed_module(tmp_path):
    elf = b"\x7fELF....\0license=GPL\0depends=net_failover,virtio-ring\0name=virtio_net\0"
    assert modinfo_depends(elf) == ["net_failover", "virtio_ring"]
    assert modinfo_depends(b"\0depends=\0name=failover\0") == []
    compressed = tmp_path / "virtio_net.ko.xz"
    compressed.write_bytes(lzma.compress(elf, format=lzma.FORMAT_XZ))
    assert read_module_bytes(compressed) == elf


def test_bzimage_version_reads_the_boot_header(tmp_path):
    image = bytearray(0x1000)
    image[0x202:0x206] = b"HdrS"
    image[0x20E:0x210] = (0x600 - 0x200).to_bytes(2, "little")
    image[0x600:0x640] = b"6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1\0"
    path = tmp_path / "vmlinuz"
    path.write_bytes(bytes(image))
    assert bzimage_version(path) == "6.12.117+deb12-cloud-amd64"
    path.write_bytes(b"\0" * 4096)
    assert bzimage_version(path) is None


def _python_guest(argv=None, **changes) -> GuestStart:
    argv = argv or ["/usr/local/bin/python3.11", "-I", "-S", "-c", "import app; app.main()", "--port", "8080"]
    fields = dict(root=Path("/x"), digest="0" * 64, argv=run_as(argv, 65534), env={"PATH": "/usr/local/bin"},
                  uid=65534, gid=65534, port=8080, workdir="/tmp", drops_own_privileges=True,
                  ready_line="listening on")
    return GuestStart(**{**fields, **changes})


def test_init_script_loads_modules_in_order_and_drops_root():
    argv = ["/usr/local/bin/python3.11", "-I", "-S", "-c", "import app; app.main()", "--port", "8080"]
    script = init_script(["failover.ko", "net_failover.ko", "virtio_net.ko"], _python_guest(argv))
    assert script.startswith("#!/.layerbench/busybox sh\n")
    assert script.index("failover.ko") < script.index("net_failover.ko") < script.index("virtio_net.ko")
    assert MARKER_INIT in script and MARKER_APP in script
    assert "10.0.2.15/24" in script and "10.0.2.2" in script
    assert "os.setuid(65534)" in script and "poweroff -f" in script
    assert "setpriv" not in script  # the interpreter drops root itself
    dropped = run_as(argv, 65534)
    assert dropped[4].startswith("import os; os.setgroups([]); os.setgid(65534); os.setuid(65534); ")
    assert dropped[4].endswith("import app; app.main()") and dropped[5:] == argv[5:]
    assert run_as(["/bin/app", "--port", "1"], 65534) == ["/bin/app", "--port", "1"]


def test_init_script_starts_any_app_as_its_user_and_watches_its_port():
    guest = GuestStart(root=Path("/x"), digest="1" * 64, argv=["/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf"],
                       env={"PATH": "/usr/sbin:/bin", "GREETING": "hello world"}, uid=101, gid=102, port=8080,
                       workdir="/srv/my app")
    script = init_script(["virtio_net.ko"], guest)
    start = script.index("/.layerbench/setpriv --reuid=101 --regid=102 --clear-groups /usr/sbin/nginx")
    assert script.index("$BB env -i GREETING='hello world' PATH=/usr/sbin:/bin /.layerbench/lib/") < start
    assert "cd '/srv/my app'" in script
    # No line to read: init stamps the moment port 8080 (0x1F90) listens, and only while the app lives.
    assert '*:1F90" 0A")' in script and "/proc/net/tcp6" in script and "mkfifo" not in script
    assert script.index(":1F90") < script.index(MARKER_APP) < script.index("wait $app")
    root = GuestStart(**{**guest.__dict__, "uid": 0, "gid": 0})
    assert "setpriv" not in init_script(["virtio_net.ko"], root)


def test_init_markers_read_the_uptime_without_a_subshell_or_an_exec():
    # Under TCG a subshell and an exec of busybox (cut) cost tens of ms each, twice before the app starts.
    script = init_script(["virtio_net.ko"], _python_guest(["/usr/local/bin/python3.11", "-c", "pass"]))
    assert "$(up)" not in script and " cut " not in script
    busybox = find_busybox()
    if busybox is None:
        pytest.skip("busybox is not installed here")
    stamp = next(line for line in script.splitlines() if line.startswith("stamp()"))
    result = subprocess.run([str(busybox), "sh", "-c", f'{stamp}\nstamp "{MARKER_INIT}"'], capture_output=True,
                            text=True, env={}, check=True)
    assert re.fullmatch(rf"{MARKER_INIT} uptime_s=\d+\.\d+\n", result.stdout)


def test_disk_modules_resolve_through_modules_dep():
    from bench.images.initramfs import DISK_MODULES

    # 6.12 cloud kernel: virtio_blk is a module with no modular dependencies, ext4 is built in.
    dep = "kernel/drivers/block/virtio_blk.ko:\nkernel/drivers/net/virtio_net.ko:\n"
    assert module_load_order(dep, DISK_MODULES) == ["kernel/drivers/block/virtio_blk.ko"]
    # 6.1 style: virtio itself modular, loaded first.
    assert [module_name(path) for path in module_load_order(MODULES_DEP_6_1, DISK_MODULES)] == [
        "virtio_ring", "virtio", "virtio_blk"]
