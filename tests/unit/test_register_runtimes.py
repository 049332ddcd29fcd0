"""scripts/register_runtimes.py: merging runtimes into Docker's daemon.json on temp files."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "register_runtimes.py"
_spec = importlib.util.spec_from_file_location("register_runtimes", SCRIPT)
register_runtimes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(register_runtimes)  # type: ignore[union-attr]

RUNSC = {"path": "/usr/local/lib/layerbench/runsc", "runtimeArgs": ["--platform=systrap", "--network=host"]}
CRUN = {"path": "/usr/bin/crun"}


def run_script(config: Path, wanted: dict | str) -> subprocess.CompletedProcess:
    argument = wanted if isinstance(wanted, str) else json.dumps(wanted)
    return subprocess.run([sys.executable, str(SCRIPT), str(config), argument], capture_output=True, text=True,
                          timeout=30)


def test_missing_file_is_created_with_the_runtimes(tmp_path):
    config = tmp_path / "docker" / "daemon.json"
    result = run_script(config, {"runsc": RUNSC, "crun": CRUN})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "changed"
    assert json.loads(config.read_text()) == {"runtimes": {"runsc": RUNSC, "crun": CRUN}}


def test_other_keys_and_other_runtimes_are_kept(tmp_path):
    config = tmp_path / "daemon.json"
    before = {"log-level": "debug", "data-root": "/srv/docker", "default-runtime": "runc",
              "runtimes": {"kata": {"path": "/opt/kata/bin/kata-runtime"}}}
    config.write_text(json.dumps(before))
    os.chmod(config, 0o600)
    result = run_script(config, {"runsc": RUNSC})
    assert result.returncode == 0, result.stderr
    after = json.loads(config.read_text())
    assert after == {**before, "runtimes": {"kata": {"path": "/opt/kata/bin/kata-runtime"}, "runsc": RUNSC}}
    assert config.stat().st_mode & 0o777 == 0o600  # the owner's mode survives the rewrite


def test_second_run_changes_nothing(tmp_path):
    config = tmp_path / "daemon.json"
    assert run_script(config, {"runsc": RUNSC, "crun": CRUN}).returncode == 0
    written = config.read_bytes()
    mtime_ns = config.stat().st_mtime_ns
    result = run_script(config, {"runsc": RUNSC, "crun": CRUN})
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["runsc: already registered", "crun: already registered", "unchanged"]
    assert config.read_bytes() == written and config.stat().st_mtime_ns == mtime_ns


def test_an_entry_of_the_same_name_is_replaced_and_reported(tmp_path):
    config = tmp_path / "daemon.json"
    old = {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=host"]}
    config.write_text(json.dumps({"runtimes": {"runsc": old}}))
    result = run_script(config, {"runsc": RUNSC})
    assert result.returncode == 0
    assert "runsc: replaced" in result.stdout and "/usr/bin/runsc" in result.stdout
    assert json.loads(config.read_text())["runtimes"]["runsc"] == RUNSC


@pytest.mark.parametrize("text", ['{"log-level": "debug",', "[1, 2]", '{"runtimes": ["runsc"]}'])
def test_a_file_that_cannot_be_merged_is_refused_and_left_untouched(tmp_path, text):
    config = tmp_path / "daemon.json"
    config.write_text(text)
    result = run_script(config, {"runsc": RUNSC})
    assert result.returncode == register_runtimes.EXIT_REFUSED
    assert result.stderr.startswith("refused: ") and len(result.stderr.strip().splitlines()) == 1
    assert config.read_text() == text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["daemon.json"]  # no temp file left


def test_an_empty_file_is_treated_as_an_empty_config(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text("  \n")
    assert run_script(config, {"crun": CRUN}).returncode == 0
    assert json.loads(config.read_text()) == {"runtimes": {"crun": CRUN}}


@pytest.mark.parametrize("wanted", ["not json", "{}", '{"runsc": {"path": "runsc"}}',
                                    '{"runsc": {"path": "/x", "runtimeArgs": "--network=host"}}',
                                    '{"runsc": {"path": "/x", "runtimeType": "io.containerd.runsc.v1"}}'])
def test_a_bad_runtimes_argument_is_a_usage_error(tmp_path, wanted):
    config = tmp_path / "daemon.json"
    result = run_script(config, wanted)
    assert result.returncode == register_runtimes.EXIT_USAGE
    assert result.stderr.startswith("bad runtimes argument: ")
    assert not config.exists()


def test_merge_does_not_change_its_input():
    config = {"runtimes": {"kata": {"path": "/k"}}, "debug": True}
    merged, lines = register_runtimes.merge_runtimes(config, {"crun": CRUN})
    assert config == {"runtimes": {"kata": {"path": "/k"}}, "debug": True}
    assert merged["runtimes"] == {"kata": {"path": "/k"}, "crun": CRUN}
    assert lines == [f"crun: added {json.dumps(CRUN)}"]
