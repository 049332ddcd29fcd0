"""Drawing a run's charts in worker processes, one per CPU (two at most here), so a report takes
about half the time on two cores.

Rendering (layout, rasterising, PNG then SVG) is pure CPU in matplotlib, which holds the GIL: threads
would not help. The workers are forked from this process once the run is loaded and matplotlib
imported, so neither is done again and nothing is pickled on the way in; each worker returns the
paths it wrote and the unreadable files its charts met, which the run's caveats then report as if
the charts had been drawn here.

Forking a process that runs other threads can deadlock a child (a lock held at the fork), so with
more than one thread alive, or where fork does not exist, the charts are drawn here, one by one.
A report is drawn after the run's last trial: no worker ever runs during a measured window.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.model import Run

MAX_WORKERS = 4  # past a few charts each, a worker's start costs more than it saves

Chart = Callable[[Run, Path], list[Path]]


@dataclass
class _Job:
    """What a forked worker inherits: the run and the charts (set just before the fork)."""

    run: Run | None = None
    charts: dict[str, Chart] = field(default_factory=dict)


_shared = _Job()


def worker_count(charts: int) -> int:
    """How many processes to draw `charts` charts with: 1 means here, without a worker."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 1
    return max(1, min(cpus, charts, MAX_WORKERS))


def draw_charts(run: Run, out_dir: Path, charts: dict[str, Chart]) -> dict[str, list[Path]]:
    """Every chart drawn into out_dir; name -> the paths it wrote ([] when it had no data), in the
    order of `charts`. A chart's exception is raised here, as when drawn in this process."""
    workers = worker_count(len(charts))
    if workers == 1:
        return {name: chart(run, out_dir) for name, chart in charts.items()}
    _shared.run, _shared.charts = run, charts
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {name: pool.submit(_draw_one, name, out_dir) for name in charts}
            drawn = {name: future.result() for name, future in futures.items()}
    finally:
        _shared.run, _shared.charts = None, {}
    for _, unreadable in drawn.values():
        for relative, caveat in unreadable.items():
            run.unreadable_met.setdefault(relative, caveat)
    return {name: paths for name, (paths, _) in drawn.items()}


def _draw_one(name: str, out_dir: Path) -> tuple[list[Path], dict]:
    """In a worker: one chart, and the unreadable files it met (on the worker's copy of the run)."""
    run = _shared.run
    paths = _shared.charts[name](run, out_dir)
    return paths, dict(run.unreadable_met)
