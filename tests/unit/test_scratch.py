"""Every temp folder a run or a probe makes is named after its process, and `bench clean` removes
those whose process is gone, one line each: a runner killed with SIGKILL during
the KVM probe runs no `finally`, so only the sweep can remove what it left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import scratch
from bench.cli import app

runner = CliRunner()

# A runner in the middle of the KVM probe: the real probe_kvm_boot, with QEMU's spawn replaced by a
# long wait (unit tests boot nothing), so the probe's folder exists when the runner is killed.
PROBING = """
import sys, time
import bench.setups.vm.accel as accel
accel.kvm_usable = lambda: (True, "")
def spawn(plan, accel_name, port, cpus, log_path):
    print("probing", log_path.parent, flush=True)
    time.sleep(60)
accel.spawn = spawn
accel.probe_kvm_boot(plan=None)
"""


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


class _NoSetups:
    """Setups' own leftovers are tested with their engines; here only the sweep of temp folders."""

    @classmethod
    def clean_leftovers(cls, run_id=None):
        return []

    @classmethod
    def prune_caches(cls):
        return []


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """This test's own temp dir, for this process (tempfile) and for the children it starts (TMPDIR),
    and its own cache (tmp_path/cache/layerbench)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("bench.leftovers.registry.classes", lambda: [_NoSetups])
    return tmp_path


def test_a_runner_killed_during_the_kvm_probe_leaves_a_folder_that_bench_clean_removes(temp_root):
    child = subprocess.Popen([sys.executable, "-c", PROBING], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).parents[2])
    try:
        line = child.stdout.readline()
        assert line.startswith("probing"), line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    [left] = list(temp_root.glob("layerbench-kvm-probe-*"))  # SIGKILL: the probe's `finally` never ran
    outcome = runner.invoke(app, ["clean"])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.splitlines() == [f"removed stale folder {left}"]
    assert not left.exists()


def test_bench_clean_prints_one_line_per_thing_removed(temp_root, monkeypatch):
    class Leftovers(_NoSetups):
        @classmethod
        def clean_leftovers(cls, run_id=None):
            return ["container layerbench-1 (exited)", "VM (QEMU pid 7)"]

    monkeypatch.setattr("bench.leftovers.registry.classes", lambda: [Leftovers])
    outcome = runner.invoke(app, ["clean"])
    assert outcome.output.splitlines() == ["removed container layerbench-1 (exited)", "removed VM (QEMU pid 7)"]
    assert "\\n" not in outcome.output


def test_only_folders_whose_owner_is_gone_are_stale(temp_root):
    dead = _dead_pid()
    for kind in scratch.KINDS:
        (temp_root / f"layerbench-{kind}-{dead}-abc").mkdir()
    (temp_root / f"layerbench-io-{dead}-xyz").write_bytes(b"x")  # the app's /io file (a file, not a folder)
    mine = scratch.owned_folder("kvm-probe")  # this process lives: spared
    others = [temp_root / "layerbench-heavy.lock", temp_root / f"layerbench-hostile-{dead}-x",
              temp_root / f"unrelated-{dead}-x"]
    others[0].write_text("")
    for path in others[1:]:
        path.mkdir()
    unowned_old, unowned_new = temp_root / "layerbench-kvm-probe-k2j4h1x9", temp_root / "layerbench-wrk-q8w7e6r5"
    unowned_old.mkdir()
    unowned_new.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(unowned_old, (two_hours_ago, two_hours_ago))  # an older version's probe folder, long dead
    os.utime(unowned_new, (two_hours_ago, two_hours_ago))  # an older version's wrk folder: may still be in use
    stale = set(scratch.stale())
    assert stale == {*(temp_root / f"layerbench-{kind}-{dead}-abc" for kind in scratch.KINDS),
                     temp_root / f"layerbench-io-{dead}-xyz", unowned_old}
    removed = scratch.clean_stale()
    assert len(removed) == len(stale) and all(not path.exists() for path in stale)
    assert mine.exists() and unowned_new.exists() and all(path.exists() for path in others)


def test_a_cache_entry_half_built_by_a_killed_runner_is_stale(temp_root):
    from bench.images import cache_root

    dead, cache = _dead_pid(), cache_root()
    for folder in ("rootfs", "initramfs", "kernel/vmlinux", "run"):
        (cache / folder).mkdir(parents=True)
    rootfs = cache / "rootfs" / f".tmp-{dead}-0123abcd4567-x1y2"  # a rootfs being built (a folder)
    initramfs = cache / "initramfs" / f".tmp-{dead}-k3j2.cpio.lz4"  # an initramfs being written (a file)
    vmlinux = cache / "kernel" / "vmlinux" / f".tmp-{dead}-6.1-abcd"  # an ELF cut from a bzImage
    rootfs.mkdir()
    initramfs.write_bytes(b"x")
    vmlinux.write_bytes(b"x")
    building = scratch.build_folder(cache / "rootfs", "fedcba987654")  # this process builds it: spared
    # An older version's build folder names no owner (its digest may even be all digits, far above any pid).
    old_digest, new_digest = cache / "rootfs" / ".tmp-012345678901-abcd", cache / "rootfs" / ".tmp-0a1b2c3d4e5f-efgh"
    old_digest.mkdir()
    new_digest.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_digest, (two_days_ago, two_days_ago))
    entry = cache / "rootfs" / "0123abcd4567"  # a finished entry, and a VM runtime dir: not build folders
    entry.mkdir()
    (cache / "run" / "layerbench-vm-x").mkdir()
    assert set(scratch.stale()) == {rootfs, initramfs, vmlinux, old_digest}
    assert building.name.startswith(f".tmp-{os.getpid()}-fedcba987654-")
    scratch.clean_stale()
    assert building.exists() and new_digest.exists() and entry.exists() and (cache / "run" / "layerbench-vm-x").exists()
    assert not any(path.exists() for path in (rootfs, initramfs, vmlinux, old_digest))


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a folder to nobody needs root")
def test_as_root_a_folder_handed_to_nobody_is_swept_and_a_symlink_is_unlinked_never_followed(temp_root, tmp_path):
    dead = _dead_pid()
    handed = temp_root / f"layerbench-host-{dead}-nginx-abc"  # a host start as root: nginx's worker is nobody
    handed.mkdir()
    os.chown(handed, 65534, 65534)
    target = tmp_path / "precious"
    target.mkdir()
    (target / "file").write_text("keep")
    link = temp_root / f"layerbench-wrk-{dead}-abc"
    link.symlink_to(target)
    assert set(scratch.stale()) == {handed, link}
    assert sorted(scratch.clean_stale()) == sorted([f"stale folder {handed}", f"stale link {link}"])
    assert not handed.exists() and not os.path.lexists(link) and (target / "file").read_text() == "keep"
