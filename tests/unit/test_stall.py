"""The stall rule and the maximum latency, from stored trials (the model), and the generator's
own record of the longest gap without a completion."""

from __future__ import annotations

import threading
import time

from bench.load.builtin import LoadSpec, run_load
from bench.model import Cell
from bench.model.cell import STALL_MIN_S
from bench.results import TrialRecord
from tests.conftest import serve_app


def _trial(repeat: int, p50_ms: float, max_ms: float, gap_ms: float | None) -> TrialRecord:
    load = {"throughput_rps": 1000.0, "latency_ms": {"p50": p50_ms, "p99": p50_ms * 3, "max": max_ms}}
    if gap_ms is not None:
        load["longest_gap_ms"] = gap_ms
    return TrialRecord(trial_id=f"t{repeat}", setup="bare", variant="default", workload="hello", repeat=repeat,
                       status="ok", load=load)


def test_a_gap_of_seconds_is_a_stall_and_the_worst_repeat_gives_the_max():
    cell = Cell("bare", "default", "hello", [_trial(0, 0.4, 12.0, 30.0), _trial(1, 0.4, 5012.0, 5000.0),
                                             _trial(2, 0.5, 15.0, 40.0)], seed=1)
    assert cell.stalls == [(1, 5.0)]
    assert cell.latency_ms.max == 5012.0 and cell.latency_ms.p50 == 0.4
    (stall,) = [caveat for caveat in cell.caveats() if caveat.kind == "stall"]
    assert stall.flag == "stalled 5.0 s in 1 trial(s)"


def test_short_gaps_slow_workloads_and_old_runs_are_not_stalls():
    just_short = _trial(0, 0.4, 900.0, STALL_MIN_S * 1e3 - 1)
    slow_workload = _trial(1, 400.0, 3000.0, 3000.0)  # 7.5 medians: a slow request, not a stall
    old_run = _trial(2, 0.4, 5000.0, None)  # stored before gaps were recorded
    cell = Cell("bare", "default", "hello", [just_short, slow_workload, old_run], seed=1)
    assert cell.stalls == [] and not [c for c in cell.caveats() if c.kind == "stall"]


def test_the_generator_records_the_longest_gap_without_a_completion():
    from bench.app.server import Handler

    pause = threading.Event()

    class Pausing(Handler):
        def do_GET(self):
            while pause.is_set():
                time.sleep(0.01)
            super().do_GET()

    with serve_app(Pausing) as port:  # the app pauses for 0.3 s, 0.15 s into a 0.6 s window
        threading.Timer(0.3, pause.set).start()
        threading.Timer(0.6, pause.clear).start()
        result = run_load(port, LoadSpec(path="/hello", connections=2, duration_s=0.6, warmup_s=0.15))
    assert 0.2 <= result.longest_gap_s <= 0.4, result.longest_gap_s
    assert 0.3 <= result.longest_gap_end_s <= 0.55, result.longest_gap_end_s
    assert result.latency_ms.max() >= 200
