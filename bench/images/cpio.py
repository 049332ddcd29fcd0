"""A pure-Python writer (and reader, for tests) of "newc" cpio archives, the format the kernel
unpacks into its rootfs tmpfs for an initramfs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_TRAILER = "TRAILER!!!"
_NEWC_MAGIC = b"070701"
_NEWC_HEADER_BYTES = 110


@dataclass(frozen=True)
class CpioEntry:
    name: str  # path inside the archive, no leading slash
    mode: int  # full st_mode: file type bits | permissions
    data: bytes = b""  # file content, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node
    uid: int = 0
    gid: int = 0


class CpioWriter:
    """Streams newc entries into a binary file object; `close()` writes the trailer."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self._next_inode = 1
        self._closed = False

    def add(self, entry: CpioEntry) -> None:
        name = entry.name.lstrip("/") or "."
        self._write_entry(name, entry.mode, entry.data, entry.rdev, entry.uid, entry.gid, self._next_inode)
        self._next_inode += 1

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self.add(CpioEntry(name, stat.S_IFDIR | mode))

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.add(CpioEntry(name, stat.S_IFREG | mode, data))

    def add_symlink(self, name: str, target: str) -> None:
        self.add(CpioEntry(name, stat.S_IFLNK | 0o777, target.encode()))

    def add_char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self.add(CpioEntry(name, stat.S_IFCHR | mode, rdev=(major, minor)))

    def add_tree(self, root: Path, prefix: str = "", keep_owners: bool = False) -> None:
        """Add a directory tree, parents before children (the kernel does not create parents).

        keep_owners: files keep their uid/gid (an image's files may belong to its own user);
        otherwise everything belongs to root."""
        for directory, subdirs, names in os.walk(root):
            subdirs.sort()
            relative_dir = Path(directory).relative_to(root).as_posix()
            for name in sorted(subdirs) + sorted(names):
                path = Path(directory) / name
                inside = "/".join(part for part in (prefix, relative_dir, name) if part and part != ".")
                info = os.lstat(path)
                owner = {"uid": info.st_uid, "gid": info.st_gid} if keep_owners else {}
                if stat.S_ISLNK(info.st_mode):
                    self.add(CpioEntry(inside, stat.S_IFLNK | 0o777, os.readlink(path).encode(), **owner))
                elif stat.S_ISDIR(info.st_mode):
                    self.add(CpioEntry(inside, stat.S_IFDIR | stat.S_IMODE(info.st_mode), **owner))
                elif stat.S_ISREG(info.st_mode):
                    self.add(CpioEntry(inside, stat.S_IFREG | stat.S_IMODE(info.st_mode), path.read_bytes(), **owner))

    def close(self) -> None:
        if not self._closed:
            self._write_entry(_TRAILER, 0, b"", (0, 0), 0, 0, 0)
            self._closed = True

    def _write_entry(self, name: str, mode: int, data: bytes, rdev: tuple[int, int], uid: int, gid: int,
                     inode: int) -> None:
        encoded = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check;
        # mtime 0 keeps the archive reproducible (same inputs, same bytes, same cache key).
        fields = (inode, mode, uid, gid, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = _NEWC_MAGIC + b"".join(b"%08X" % value for value in fields)
        self.out.write(header + encoded + _padding(_NEWC_HEADER_BYTES + len(encoded)))
        self.out.write(data + _padding(len(data)))


def _padding(length: int) -> bytes:
    return b"\0" * (-length % 4)


def parse_cpio(archive: bytes) -> list[CpioEntry]:
    """Read back a newc archive (up to the trailer); raises ValueError on a malformed one."""
    entries = []
    offset = 0
    while True:
        if archive[offset:offset + 6] != _NEWC_MAGIC:
            raise ValueError(f"bad newc magic at offset {offset}")
        if offset % 4:
            raise ValueError(f"entry at offset {offset} is not 4-byte aligned")
        fields = [int(archive[offset + 6 + 8 * i: offset + 14 + 8 * i], 16) for i in range(13)]
        mode, uid, gid, size, rdev_major, rdev_minor, namesize = (fields[1], fields[2], fields[3], fields[6],
                                                                   fields[9], fields[10], fields[11])
        name_start = offset + _NEWC_HEADER_BYTES
        name = archive[name_start:name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(_NEWC_HEADER_BYTES + namesize) % 4)
        if name == _TRAILER:
            return entries
        data = archive[data_start:data_start + size]
        entries.append(CpioEntry(name, mode, data, (rdev_major, rdev_minor), uid, gid))
        offset = data_start + size + (-size % 4)
