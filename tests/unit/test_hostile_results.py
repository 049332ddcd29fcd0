"""Hostile or unlucky run folders: corrupt, pickled or misshapen trial files, `files` entries that
point outside the run folder, and a disk that fills up while the report is drawn.

Each must give one line naming the file, the other trials still drawn, a non-zero exit, no
traceback, and never a file read from outside the run folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench import results
from bench.cli import app
from bench.runner import Runner
from bench.scenario import from_flags
from bench.trial_files import UnreadableFile, file_problems, read_array, read_csv
from tests.stand_ins import fake_load_with

runner = CliRunner()


# One worker runs this module: its module fixture (the pristine run) is then made once, not once per worker.
pytestmark = pytest.mark.xdist_group("hostile_results")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A three-trial bare run as the runner writes it (latencies, app times, process and host samples
    per trial), its load seeded (tests/stand_ins.py) over windows long enough for a CPU timeseries."""
    scenario = from_flags(["bare"], ["hello"], duration=0.7, warmup=0, repeat=3, connections=2)
    return Runner(scenario, tmp_path_factory.mktemp("pristine"), load=fake_load_with(0.7)).run()


@pytest.fixture
def run_dir(pristine, tmp_path) -> Path:
    copy = tmp_path / pristine.name
    shutil.copytree(pristine, copy)
    return copy


def _pickled(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


CORRUPTIONS = {
    "pickled latencies": ("r0", "latency_ms.npy", _pickled),
    "garbage latencies": ("r0", "latency_ms.npy", lambda path: path.write_bytes(os.urandom(3000))),
    "2-D strings as latencies": ("r1", "latency_ms.npy", lambda path: np.save(path, np.array([["a", "b"], ["c", "d"]]))),
    "2-D numbers as latencies": ("r1", "latency_ms.npy", lambda path: np.save(path, np.ones((3, 4)))),
    "truncated latencies": ("r2", "latency_ms.npy", lambda path: path.write_bytes(path.read_bytes()[:-100])),
    "random-bytes processes.csv": ("r1", "processes.csv", lambda path: path.write_bytes(os.urandom(5000))),
    "NUL bytes after a good header": ("r2", "processes.csv",
                                      lambda path: path.write_bytes(path.read_bytes()[:200] + b"\0" * 500)),
    "pickled app times": ("r0", "app_ms.npy", _pickled),
}


def _corrupt(run_dir: Path, case: str) -> str:
    repeat, name, damage = CORRUPTIONS[case]
    path = run_dir / "trials" / f"bare--hello--{repeat}" / name
    damage(path)
    return f"trials/bare--hello--{repeat}/{name}"


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_report_names_a_corrupt_file_draws_the_rest_and_exits_non_zero(run_dir, case):
    relative = _corrupt(run_dir, case)
    outcome = runner.invoke(app, ["report", str(run_dir)])
    assert outcome.exit_code == 1, outcome.output
    assert "Traceback" not in outcome.output and isinstance(outcome.exception, SystemExit)
    (line,) = _error_lines(outcome.output)
    assert relative in line and "\n" not in line, line
    assert (run_dir / "report.html").is_file()
    charts = {path.name for path in (run_dir / "charts").iterdir()}
    assert {"latency_cdf.png", "timeseries.png", "throughput.png"} <= charts  # the other trials are drawn
    assert relative in (run_dir / "report.html").read_text()  # the page says it too


@pytest.mark.parametrize("case", ["pickled latencies", "random-bytes processes.csv", "2-D strings as latencies"])
def test_show_and_compare_name_a_corrupt_file_and_exit_non_zero(run_dir, pristine, tmp_path, case):
    relative = _corrupt(run_dir, case)
    shown = runner.invoke(app, ["show", str(run_dir)], env={"COLUMNS": "300"})
    assert shown.exit_code == 1 and "Traceback" not in shown.output, shown.output
    assert [line for line in shown.output.splitlines() if relative in line], shown.output
    as_json = runner.invoke(app, ["show", str(run_dir), "--format", "json"])
    assert as_json.exit_code == 1
    summary = json.loads(as_json.stdout)
    assert [c for c in summary["caveats"] if c["kind"] == "unreadable" and relative in c["text"]]
    compared = runner.invoke(app, ["compare", str(pristine), str(run_dir), "--out", str(tmp_path / "cmp")])
    assert compared.exit_code == 1 and "Traceback" not in compared.output, compared.output
    (line,) = _error_lines(compared.output)
    assert relative in line


OUTSIDE = {
    "parent path": "../../../../../../etc/hostname",
    "absolute path": "/etc/hostname",
    "symlink out": "trials/bare--hello--r0/escape.npy",
}


@pytest.mark.parametrize("case", list(OUTSIDE))
def test_a_files_entry_pointing_outside_the_run_folder_is_refused(run_dir, tmp_path, case):
    outside = tmp_path / "outside.npy"
    np.save(outside, np.full(100, 1e6))  # readable, and it would show in the CDF if it were followed
    (run_dir / OUTSIDE["symlink out"]).symlink_to(outside)
    data = json.loads((run_dir / "run.json").read_text())
    data["trials"][0]["files"]["latency_ms"] = OUTSIDE[case]
    (run_dir / "run.json").write_text(json.dumps(data))
    with pytest.raises(UnreadableFile, match="outside the run folder"):
        read_array(run_dir, OUTSIDE[case])
    outcome = runner.invoke(app, ["report", str(run_dir)])
    assert outcome.exit_code == 1, outcome.output
    (line,) = _error_lines(outcome.output)
    assert "outside the run folder" in line and "refused" in line


def test_the_readers_accept_what_the_runner_wrote(pristine):
    for trial in results.load_run(pristine).trials:
        assert file_problems(pristine, trial.files.named()) == {}
        assert read_array(pristine, trial.files.latency_ms).ndim == 1
        assert read_csv(pristine, trial.files.processes)[0]["t"]
    assert read_array(pristine, "trials/none/latency_ms.npy").size == 0  # missing: no figure, not an error


def test_a_report_on_a_full_disk_exits_non_zero_and_leaves_the_old_charts_whole(run_dir, monkeypatch):
    assert runner.invoke(app, ["report", str(run_dir)]).exit_code == 0
    before = {path.name: path.read_bytes() for path in (run_dir / "charts").iterdir()}
    page = (run_dir / "report.html").read_bytes()
    from matplotlib.figure import Figure

    real_savefig, saved = Figure.savefig, []

    def savefig(self, *args, **kwargs):
        if len(saved) >= 3:  # the disk fills up while the third chart is written
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(args[0])
        return real_savefig(self, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", savefig)
    outcome = runner.invoke(app, ["report", str(run_dir)])
    assert outcome.exit_code == 1, outcome.output
    (line,) = _error_lines(outcome.output)
    assert "No space left on device" in line and "Traceback" not in outcome.output
    assert {path.name: path.read_bytes() for path in (run_dir / "charts").iterdir()} == before
    assert (run_dir / "report.html").read_bytes() == page
    assert not [path for path in run_dir.iterdir() if path.name.startswith(".")], list(run_dir.iterdir())


def test_a_first_report_on_a_full_disk_leaves_no_charts_at_all(run_dir, monkeypatch):
    from matplotlib.figure import Figure

    def savefig(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Figure, "savefig", savefig)
    outcome = runner.invoke(app, ["report", str(run_dir)])
    assert outcome.exit_code == 1, outcome.output
    assert not (run_dir / "charts").exists() and not (run_dir / "report.html").exists()
    assert not [path for path in run_dir.iterdir() if path.name.startswith(".")]
