"""The rootfs builder: cached by content, trimmed, and still able to run the app (proved in a chroot).
Not a unit test: building it compiles the stdlib (several seconds of CPU each time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from bench.images import rootfs as rootfs_module
from bench.images.rootfs import Rootfs, build_rootfs
from bench.netutil import free_port
from tests.app_requests import get_ok as _get
from tests.conftest import require

pytestmark = pytest.mark.integration

SIZE_BUDGET_BYTES = 45_000_000  # aim is < 40 MB; the margin absorbs stdlib patch releases


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_rootfs(cache_dir=tmp_path_factory.mktemp("cache"))


def test_layout_and_size(built):
    root = built.path
    assert len(built.digest) >= 12 and built.digest in str(root)
    assert (root / built.python.lstrip("/")).is_file()
    assert (root / "usr/local/lib/layerbench/bench/app/server.py").is_file()
    assert list((root / "usr/local/lib/layerbench/bench/app/__pycache__").glob("server.*.pyc"))
    assert "nobody:x:65534:65534" in (root / "etc/passwd").read_text()
    assert (root / "tmp").stat().st_mode & 0o1777 == 0o1777
    for empty in ("proc", "sys", "dev"):
        assert (root / empty).is_dir()
    assert 10_000_000 < built.size_bytes < SIZE_BUDGET_BYTES


def test_trimmed(built):
    stdlib = next((built.path / "usr/local/lib").glob("python3.*"))
    for gone in ("test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo", "site-packages"):
        assert not (stdlib / gone).exists(), gone
    assert not list(stdlib.glob("config-*"))
    assert not list((stdlib / "lib-dynload").glob("_test*"))
    # The stdlib is sourceless (legacy-layout pycs where the .py files were); the app keeps its sources.
    assert (stdlib / "http" / "server.pyc").is_file() and not (stdlib / "http" / "server.py").exists()
    assert not list(stdlib.rglob("*.py")) and not list(stdlib.rglob("__pycache__"))
    assert (built.path / "usr/local/lib/layerbench/bench/app/server.py").is_file()


def test_cached_then_rebuilt_when_inputs_change(built, monkeypatch):
    cache_dir = built.path.parent.parent
    again = build_rootfs(cache_dir=cache_dir)
    assert again == built
    monkeypatch.setattr(rootfs_module, "BUILDER_VERSION", "test-" + rootfs_module.BUILDER_VERSION)
    changed = build_rootfs(cache_dir=cache_dir)
    assert changed.digest != built.digest and changed.path.is_dir() and built.path.is_dir()
    assert not [p for p in changed.path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_app_serves_inside_chroot_as_nobody(built):
    """The trim is safe: the rootfs alone (no host files) imports the app and answers requests."""
    require(os.geteuid() == 0 and shutil.which("chroot") is not None, "root and chroot")
    port = free_port()
    chroot = shutil.which("chroot")
    app = subprocess.Popen([chroot, "--userspec=65534:65534", str(built.path), *built.app_argv("127.0.0.1", port)],
                           env=built.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        stats = _get_when_ready(port, "/stats", app)
        assert stats["uid"] == 65534
        assert stats["executable"] == built.python
        assert json.loads(_get(port, "/cpu?n=1000"))["rounds"] == 1000
        assert json.loads(_get(port, "/io?kb=4"))["read"] == 4096  # tempfile in the rootfs's /tmp
    finally:
        app.terminate()
        output, _ = app.communicate(timeout=10)
    assert app.returncode == 0, output


def test_pycs_are_used_not_recompiled(built):
    """No source is compiled at start: a read-only rootfs could never cache the result."""
    result = subprocess.run([str(built.path / built.python.lstrip("/")), "-I", "-S", "-v", "-c",
                             "import sys; sys.path.insert(0, '/nonexistent'); import http.server, json, hashlib"],
                            env={**built.env, "LD_LIBRARY_PATH": str(built.path / "usr/local/lib")},
                            capture_output=True, text=True, timeout=30)
    # Run outside a chroot the interpreter's home is the rootfs copy of the stdlib (found from argv0).
    assert result.returncode == 0, result.stderr
    loaded = [line for line in result.stderr.splitlines() if line.startswith("# code object from")]
    assert loaded and all(line.rstrip("'").endswith(".pyc") for line in loaded), loaded


def _get_when_ready(port: int, path: str, app: subprocess.Popen) -> dict:
    give_up = time.monotonic() + 15
    while time.monotonic() < give_up:
        if app.poll() is not None:
            pytest.fail(f"app exited: {app.stdout.read().decode(errors='replace')}")
        try:
            return json.loads(_get(port, path))
        except OSError:
            time.sleep(0.05)
    pytest.fail("app never answered inside the chroot")


def test_argv_runs_the_app_module():
    argv = Rootfs(path=Path("/x"), digest="0" * 64, size_bytes=0, python="/p", env={}).app_argv("0.0.0.0", 8080)
    assert argv[0] == "/p" and argv[-4:] == ["--host", "0.0.0.0", "--port", "8080"]


def test_only_libpython_moves_with_the_interpreter():
    """Debian's python3 has LIBDIR /usr/lib/x86_64-linux-gnu, which also holds libc and the loader."""
    from pathlib import Path

    from bench.images.rootfs import library_destination

    libdir = Path("/usr/lib/x86_64-linux-gnu")
    assert library_destination("libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
                               libdir / "libpython3.11.so.1.0", libdir) == "/usr/local/lib/libpython3.11.so.1.0"
    assert library_destination("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", libdir / "libc.so.6",
                               libdir) == "/lib/x86_64-linux-gnu/libc.so.6"
    assert library_destination("/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2",
                               libdir / "ld-linux-x86-64.so.2", libdir) == "/lib64/ld-linux-x86-64.so.2"


def test_shared_libraries_asks_ldd_once_for_all_binaries_and_finds_what_it_finds_one_by_one(monkeypatch):
    # One ldd per extension module (~60) cost ~0.6 s of every prepare, three times per run.
    binaries = [Path(os.path.realpath(sys.executable)),
                *sorted(Path(sysconfig.get_paths()["stdlib"], "lib-dynload").glob("_s*.so"))[:4]]
    one_by_one = {}
    for binary in binaries:
        one_by_one.update(rootfs_module.shared_libraries([binary]))
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(rootfs_module.subprocess, "run", lambda argv, **kw: calls.append(argv) or real_run(argv, **kw))
    assert rootfs_module.shared_libraries(binaries) == one_by_one
    assert len(calls) == 1
