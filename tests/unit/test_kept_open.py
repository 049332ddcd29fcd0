"""Files kept open and read again from offset 0 (bench.metrics.kept_open), as the sampler reads them."""

from __future__ import annotations

import os

import pytest

from bench.metrics.kept_open import KeptOpen


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_kept_file_reads_its_content_now_and_is_let_go_when_forgotten_or_unreadable(tmp_path):
    counter, other = tmp_path / "counter", tmp_path / "other"
    counter.write_text("1\n")
    other.write_text("x\n")
    files, before = KeptOpen(), _open_descriptors()
    assert files.read(str(counter)) == b"1\n"
    counter.write_text("22\n")  # the same file rewritten: the kept descriptor reads it anew
    assert files.read(str(counter)) == b"22\n" and _open_descriptors() == before + 1
    files.read(str(other))
    files.keep_only([str(other)])
    assert _open_descriptors() == before + 1
    with pytest.raises(FileNotFoundError):
        files.read(str(tmp_path / "absent"))
    assert _open_descriptors() == before + 1  # a failed open keeps nothing
    files.close()
    assert _open_descriptors() == before
