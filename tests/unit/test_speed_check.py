"""tools/speed_check.py without measuring: its table, its choice of parts, and the per-round
ratios it and tools/generator_check.py take their medians of (tests/unit/test_tools.py runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import results
from bench.scenario import parse_scenario
from tools import generator_check, speed_check


def test_the_table_gives_each_figure_its_goal_and_verdict():
    table = speed_check.render([speed_check.Figure("VM launch to first 200", "4.0 s or less", "3.90 s", True, "0.10"),
                                speed_check.Figure("QEMU RSS", "200 MB or less", "255 MB", False, "0.20")])
    lines = table.splitlines()
    assert lines[0].startswith("| figure | goal |") and lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| VM launch to first 200 | 4.0 s or less | 3.90 s | 0.10 | yes |"
    assert lines[3].endswith("| NO |")


def test_an_unknown_part_is_one_line_and_measures_nothing(monkeypatch, capsys):
    monkeypatch.setattr(speed_check, "MEASURES", {})  # measuring anything would raise KeyError
    with pytest.raises(SystemExit) as exit_info:
        speed_check.main(["--only", "quick,warp"])
    assert exit_info.value.code == 2 and "unknown part(s) warp" in capsys.readouterr().err


def test_the_vm_scenario_parses_with_the_repeat_asked():
    scenario = parse_scenario(speed_check.VM_SCENARIO % 3)
    assert scenario.repeat == 3 and scenario.setups[0].setup == "vm"


def test_round_ratios_pair_each_round_and_skip_a_zero_reference():
    assert generator_check.round_ratios([90.0, 100.0, 50.0], [100.0, 100.0, 0.0]) == [0.9, 1.0]


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "small_run"


def test_the_quick_rows_read_the_stored_runs_typed_blocks():
    record = results.load_run(FIXTURE)  # format 6: a trial's sampler and roles are typed, not dicts
    sampler, wall = speed_check.quick_figures(record, 44.5)
    assert sampler.measured.startswith("1.00% [1.00%-1.00%], 16 trials") and not sampler.meets
    assert wall.measured == "44.5 s" and wall.meets


def test_the_vm_rows_read_the_stored_runs_typed_blocks():
    record = results.load_run(FIXTURE)
    for trial in record.trials:
        if trial.setup == "vm" and trial.workload == "cpu":
            trial.kind = "idle"  # as the VM scenario's idle trials: QEMU's RSS at rest
        elif trial.setup == "vm":
            trial.kind = "startup"
    starts, rss = speed_check.vm_figures(record)
    assert starts.measured.endswith(", 2 starts") and rss.measured.endswith(", 2 idle trials")
    assert rss.measured.split(" MB")[0].isdigit()
