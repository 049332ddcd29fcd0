"""The root filesystem every isolated setup runs: the host's own interpreter, trimmed.

Built once from the interpreter the bare setup runs (`os.path.realpath(sys.executable)`), its
libpython, its standard library without what the app cannot import, the shared libraries `ldd`
names, and the app. The directory is cached under `$XDG_CACHE_HOME/layerbench/rootfs/<digest>`,
where the digest hashes every input file (path in the rootfs, mode, content): while nothing
changes it is reused, and a change builds a new one in a temp dir that is renamed into place.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.app.command import APP_DIR, PACKAGE_PARENT, app_argv
from bench.images import cache_root
from bench.images.tree import tree_bytes
from bench.scratch import build_folder

# Bump when the layout or the trim rules change: the digest then changes and a new rootfs builds.
BUILDER_VERSION = "5"

PREFIX = "/usr/local"  # where the interpreter lives inside the rootfs
NOBODY_ID = 65534  # the unprivileged uid/gid the app runs as

# Stdlib directories (any depth) the app cannot import: test suites, GUI, installers, 2to3,
# build configuration, third-party packages, and pydoc's topic dump (only used by help()).
_SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__", "idlelib", "tkinter", "turtledemo", "ensurepip",
              "lib2to3", "site-packages", "pydoc_data", "distutils", "curses", "sqlite3", "dbm", "unittest",
              "xmlrpc"}
_SKIP_DIR_PREFIXES = ("config-",)
_SKIP_FILES = {"turtle.py", "idle.py", "__phello__.foo.py"}
# Extension modules the app cannot plausibly import (tests, GUI, terminals, databases, audio, NIS).
_SKIP_EXTENSIONS = re.compile(r"^(_test\w*|_xx\w*|xxlimited\w*|_ctypes_test|_tkinter|_curses\w*|readline|"
                              r"_sqlite3|_dbm|_gdbm|nis|spwd|ossaudiodev|audioop|_crypt)\.")

_LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(\S+)\s+\(0x[0-9a-f]+\)\s*$")


@dataclass(frozen=True)
class Rootfs:
    """A built root filesystem and how to run the app in it."""

    path: Path  # the directory tree: the root filesystem
    digest: str  # sha256 hex of everything in it (inputs + builder version); the cache key
    size_bytes: int  # sum of the regular files' sizes
    python: str  # absolute path of the interpreter inside the rootfs
    env: dict[str, str] = field(default_factory=dict)  # environment the interpreter needs inside

    def app_argv(self, host: str, port: int) -> list[str]:
        """The argv that runs the app inside the rootfs, listening on host:port."""
        return app_argv(self.python, host, port)


def build_rootfs(cache_dir: Path | None = None, progress: Callable[[str], None] = lambda m: None) -> Rootfs:
    """The rootfs for this interpreter and app: reused from the cache, or built (~10 s) and cached."""
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root()
    files, symlinks = _plan()
    digest = _digest(files, symlinks)
    final = cache_dir / "rootfs" / digest
    if final.is_dir():
        progress(f"rootfs {digest[:12]} already built")
    else:
        progress(f"building rootfs {digest[:12]} ({len(files)} files)")
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = build_folder(final.parent, digest[:12])  # named after this runner: bench clean removes it once killed
        try:
            _populate(temp, files, symlinks, progress)
            try:
                os.rename(temp, final)  # atomic: a rootfs directory is either complete or absent
            except OSError:
                if not final.is_dir():  # another build may have won the race; that one is as good
                    raise
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Rootfs(path=final, digest=digest, size_bytes=tree_bytes(final),
                  python=f"{PREFIX}/bin/python{version}", env=_env())


def rootfs_digest() -> str:
    """The digest build_rootfs would return now (hashes the inputs, ~0.3 s; builds nothing)."""
    return _digest(*_plan())


def _env() -> dict[str, str]:
    # PYTHONHOME and PYTHONDONTWRITEBYTECODE matter only without -I (app_argv passes -I, and the
    # interpreter then finds its home from its own path); LD_LIBRARY_PATH replaces the host
    # interpreter's RUNPATH, which points into the host's pyenv tree.
    return {"PATH": f"{PREFIX}/bin:/usr/bin:/bin", "PYTHONHOME": PREFIX, "PYTHONDONTWRITEBYTECODE": "1",
            "LD_LIBRARY_PATH": f"{PREFIX}/lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu"}


# ---- planning: which host file goes where (pure, cheap, hashed for the digest) -------------

def _plan() -> tuple[dict[str, Path], dict[str, str]]:
    """({path in rootfs: host file}, {symlink in rootfs: target}) for everything to copy."""
    files, symlinks = _planned()
    return dict(files), dict(symlinks)


@functools.lru_cache(maxsize=1)
def _planned() -> tuple[dict[str, Path], dict[str, str]]:
    # Once per process: a run prepares the container image and the VM from one rootfs, and each
    # plan walks the stdlib and asks ldd about ~60 binaries (the contents are hashed every time).
    executable = Path(os.path.realpath(sys.executable))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dest_stdlib = f"{PREFIX}/lib/python{version}"
    base_libdir = Path(os.path.realpath(sysconfig.get_config_var("LIBDIR") or executable.parent.parent / "lib"))

    files: dict[str, Path] = {f"{PREFIX}/bin/python{version}": executable}
    symlinks = {f"{PREFIX}/bin/python3": f"python{version}"}
    extensions: list[Path] = []
    for source in _walk_stdlib(stdlib):
        relative = source.relative_to(stdlib).as_posix()
        if relative.startswith("lib-dynload/"):
            if _SKIP_EXTENSIONS.match(source.name):
                continue
            extensions.append(source)
        files[f"{dest_stdlib}/{relative}"] = source
    for source in sorted((PACKAGE_PARENT / "bench").glob("__init__.py")) + sorted(
            (PACKAGE_PARENT / "bench" / "app").glob("*.py")):
        files[f"{APP_DIR}/{source.relative_to(PACKAGE_PARENT).as_posix()}"] = source

    for name, library in shared_libraries([executable, *extensions]).items():
        real = Path(os.path.realpath(library))
        files[library_destination(name, library, real, base_libdir)] = real
    return files, symlinks


def library_destination(name: str, library: str, real: Path, base_libdir: Path) -> str:
    """Where a shared library goes in the rootfs: libpython moves with the interpreter to PREFIX/lib
    (LD_LIBRARY_PATH finds it there); every other library keeps the path the loader knows it by.

    Only libpython moves: with Debian's own python3, LIBDIR is /usr/lib/x86_64-linux-gnu, where libc
    and the dynamic loader live too, and moving those would leave the interpreter unable to start.
    """
    if real.is_relative_to(base_libdir) and Path(name).name.startswith("libpython"):
        return f"{PREFIX}/lib/{Path(name).name}"
    return library


def _walk_stdlib(stdlib: Path):
    for directory, subdirs, names in os.walk(stdlib):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS and not d.startswith(_SKIP_DIR_PREFIXES))
        for name in sorted(names):
            path = Path(directory) / name
            if name in _SKIP_FILES or name.endswith((".pyc", ".exe")) or not path.is_file():
                continue
            yield path


def shared_libraries(binaries: list[Path]) -> dict[str, str]:
    """{name as linked: absolute path} of every library ldd names, plus the dynamic loader."""
    found: dict[str, str] = {}
    if not binaries:
        return found
    # One ldd for all of them (it prints a "path:" line before each binary's libraries): the
    # interpreter and its ~60 extension modules took ~0.6 s as one ldd each, at every prepare.
    result = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True, check=False,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    binary = str(binaries[0])
    for line in result.stdout.splitlines():
        if len(binaries) > 1 and not line[:1].isspace() and line.endswith(":"):
            binary = line[:-1]
        elif "not found" in line:
            raise RuntimeError(f"ldd {binary}: a library is missing on the host:\n{line.strip()}")
        elif (match := _LDD_LINE.match(line)) and match.group(2).startswith("/"):  # skips linux-vdso (no file)
            found[match.group(1) or match.group(2)] = match.group(2)
    # glibc dlopen()s libgcc_s when a thread exits (pthread_exit unwinds), which ldd cannot see:
    # without it the app aborts on its first finished connection thread.
    libc = found.get("libc.so.6")
    if libc and os.path.exists(gcc_s := os.path.join(os.path.dirname(libc), "libgcc_s.so.1")):
        found["libgcc_s.so.1"] = gcc_s
    return found


def _digest(files: dict[str, Path], symlinks: dict[str, str]) -> str:
    hasher = hashlib.sha256(f"layerbench-rootfs {BUILDER_VERSION} strip={_strip_tool()}\n".encode())
    for dest in sorted(files):
        source = files[dest]
        hasher.update(f"{dest} {stat.S_IMODE(source.stat().st_mode):o} {_file_sha256(source)}\n".encode())
    for dest in sorted(symlinks):
        hasher.update(f"{dest} -> {symlinks[dest]}\n".encode())
    return hasher.hexdigest()


def _file_sha256(path: Path) -> str:
    status = path.stat()
    return _sha256_of(path, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256_of(path: Path, size: int, mtime_ns: int) -> str:
    """A file's sha256, computed once per process while its size and mtime stay the same."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---- populating a directory ----------------------------------------------------------------

def _populate(root: Path, files: dict[str, Path], symlinks: dict[str, str], progress: Callable[[str], None]) -> None:
    for dest, source in files.items():
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o755 if os.access(source, os.X_OK) else 0o644)  # not the umask's say
    for dest, link in symlinks.items():
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link, target)
    for empty in ("proc", "sys", "dev", "etc"):
        (root / empty).mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text(f"root:x:0:0:root:/root:/sbin/nologin\n"
                                         f"nobody:x:{NOBODY_ID}:{NOBODY_ID}:nobody:/nonexistent:/sbin/nologin\n")
    (root / "etc" / "group").write_text(f"root:x:0:\nnogroup:x:{NOBODY_ID}:\n")
    _strip_debug(root, [dest for dest in files if dest.startswith(f"{PREFIX}/")], progress)
    progress("precompiling bytecode")
    _compile(root)
    # mkdtemp makes the root 0700 and a strict umask would hide the rest from uid 65534.
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
    os.chmod(root / "tmp", 0o1777)


def _strip_tool() -> str | None:
    return shutil.which("strip")


def _strip_debug(root: Path, dests: list[str], progress: Callable[[str], None]) -> None:
    # The host's pyenv build keeps DWARF debug info: 18 MB in libpython alone. --strip-debug drops
    # only .debug_* sections, which are never mapped at run time: the code and data that run are
    # byte for byte those of the bare process. Without binutils the rootfs is just bigger.
    tool = _strip_tool()
    elves = [root / dest.lstrip("/") for dest in dests if dest.endswith(".so") or ".so." in dest
             or dest.startswith(f"{PREFIX}/bin/")]
    if tool is None or not elves:
        return
    progress(f"stripping debug info from {len(elves)} ELF files")
    subprocess.run([tool, "--strip-debug", *map(str, elves)], check=True, capture_output=True)


def _compile(root: Path) -> None:
    # The rootfs is read-only at run time, so a missing .pyc would be recompiled at every start.
    # unchecked-hash pycs never stat their source (nothing changes there) and are reproducible.
    # The stdlib is sourceless: legacy-layout pycs (foo.pyc where foo.py was, found by the
    # SourcelessFileLoader) and no .py: 8.8 MB less to copy into every image and initramfs, one
    # stat fewer per import. Its tracebacks lose their source lines. The app keeps its sources.
    stdlib = root / PREFIX.lstrip("/") / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    for legacy, target in ((True, stdlib), (False, root / APP_DIR.lstrip("/"))):
        result = subprocess.run([sys.executable, "-I", "-m", "compileall", "-q", "-j", "0", *(["-b"] if legacy else []),
                                 "--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", "/", str(target)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"compileall failed in {root}: {(result.stdout + result.stderr).strip()[-2000:]}")
    for source in stdlib.rglob("*.py"):
        if source.with_suffix(".pyc").is_file():
            source.unlink()
