"""Charts drawn in forked workers (bench.outputs.plots.workers): what a chart returns and what it
met comes back to this process, in the charts' order; a chart's error is raised here."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from bench.model import Run
from bench.outputs.plots import workers
from bench.vocabulary import Caveat

FIXTURE = Path(__file__).parent.parent / "fixtures" / "small_run"


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setattr(workers, "worker_count", lambda charts: 2)


def _where(name: str):
    def chart(run: Run, out_dir: Path) -> list[Path]:
        return [out_dir / f"{name}-{os.getpid()}.png"]
    return chart


def test_each_chart_is_drawn_in_a_worker_and_comes_back_in_order(two_workers, tmp_path):
    charts = {name: _where(name) for name in ("c", "a", "b")}
    drawn = workers.draw_charts(Run.load(FIXTURE), tmp_path, charts)
    assert list(drawn) == ["c", "a", "b"]
    pids = {int(paths[0].stem.split("-")[1]) for paths in drawn.values()}
    assert os.getpid() not in pids


def test_an_unreadable_file_a_worker_met_reaches_the_runs_caveats(two_workers, tmp_path):
    caveat = Caveat("unreadable", "bare / hello", "Unreadable file 'x.npy'", "unreadable file")

    def meets_one(run: Run, out_dir: Path) -> list[Path]:
        run.unreadable_met["trials/x.npy"] = caveat
        return []

    run = Run.load(FIXTURE)
    drawn = workers.draw_charts(run, tmp_path, {"one": meets_one, "other": _where("other")})
    assert drawn["one"] == [] and run.unreadable_met == {"trials/x.npy": caveat}
    assert caveat in run.caveats()


def test_a_charts_error_is_raised_here(two_workers, tmp_path):
    def broken(run: Run, out_dir: Path) -> list[Path]:
        raise ValueError("no such column")

    with pytest.raises(ValueError, match="no such column"):
        workers.draw_charts(Run.load(FIXTURE), tmp_path, {"fine": _where("fine"), "broken": broken})


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert workers.worker_count(11) == 1
    finally:
        stop.set()
        other.join()
    assert workers.worker_count(1) == 1
