"""Each measurement check in tools/ run for real on something tiny: the stand-ins of tests/stand_ins.py
in this process, or a short bare run (no engine) in a child. A check that no longer runs, or that
prints no answer, fails here; what each one measures at full size is for a quiet machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stand_ins import run_shipped, standing_in
from tools import (gate_check, generator_check, hostile_input_check, interrupt_check, latency_storage_check,
                   ratio_check, speed_check, split_vs_loopback)

TINY = ["--repeat", "2", "--duration", "0.1"]


def test_gate_check_gates_an_a_a_and_an_a_b_pair(monkeypatch, capsys):
    with standing_in(monkeypatch):
        status = gate_check.main(["--pairs", "1", "--gates", "throughput_rps:-5%", *TINY])
    printed = capsys.readouterr().out
    assert status in (0, gate_check.BELOW_GOAL), printed
    assert "   1  A/A" in printed and "   2  A/B" in printed, printed
    assert "throughput_rps:-5%: A/A passed" in printed and "A/B failed" in printed, printed


def test_generator_check_compares_the_builtin_generator_with_wrk(monkeypatch, capsys):
    with standing_in(monkeypatch):
        status = generator_check.main(["--target", "app", *TINY])
    printed = capsys.readouterr().out
    assert status in (0, generator_check.BELOW_GOAL), printed
    assert "hello-builtin  req/s per repeat:" in printed and "ratio of medians" in printed, printed


def test_ratio_check_pools_a_run_by_generator(tmp_path, monkeypatch, capsys):
    run_dir = run_shipped("gvisor-check", tmp_path, monkeypatch, report=False)
    status = ratio_check.main([str(run_dir)])
    printed = capsys.readouterr().out
    assert status in (0, 1), printed
    assert ", builtin: " in printed and ", wrk: " in printed and "built-in ratio / wrk ratio" in printed, printed


def test_latency_storage_check_measures_a_fresh_trial(monkeypatch, capsys):
    with standing_in(monkeypatch):
        assert latency_storage_check.main(["--duration", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "requests" in printed and "x smaller; worst percentile error" in printed, printed


def test_hostile_input_check_runs_the_real_command_line_on_one_input(capsys):
    status = hostile_input_check.main(["--only", "alias bomb"])
    printed = capsys.readouterr().out
    assert "alias bomb, 9 levels" in printed, printed
    assert status == 0, printed


def test_interrupt_check_signals_a_bare_run_and_finds_it_clean(capsys):
    status = interrupt_check.main(["--setups", "bare", "--tries", "1", "--phases", "prepare"])
    printed = capsys.readouterr().out
    assert "bare      prepare   try  1" in printed, printed
    assert status == 0, printed


@pytest.mark.timeout(60)
def test_split_vs_loopback_runs_its_loopback_half_on_this_machine(tmp_path, capsys):
    status = split_vs_loopback.main(["--local", "--rounds", "1", "--setups", "bare", "--duration", "0.2",
                                     "--warmup", "0", "--repeat", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "loopback" in printed and "req/s" in printed, printed
    assert (tmp_path / "split-vs-loopback.json").is_file()


def test_speed_check_measures_the_generator_part(monkeypatch, capsys):
    with standing_in(monkeypatch):
        status = speed_check.main(["--only", "generator", "--repeat", "2"])
    printed = capsys.readouterr().out
    assert status in (0, 1, 3), printed
    assert "built-in / wrk" in printed and "| figure | goal |" in printed, printed


ROOT = Path(__file__).resolve().parents[2]
HELPERS = {"__init__", "child", "exits"}  # the checks' shared parts, run through the checks above
# What a file of tools/ or scripts/ says in its first lines: what it is and who runs it.
KINDS = ("measurement check", "helper of the measurement checks", "product set-up", "developer set-up")


def test_every_check_in_tools_has_a_smoke_test_here():
    checks = {path.stem for path in (ROOT / "tools").glob("*.py")} - HELPERS
    tested = {name for name in checks if f"def test_{name}_" in Path(__file__).read_text()}
    assert checks and tested == checks, f"no smoke test for {sorted(checks - tested)}"


@pytest.mark.parametrize("path", sorted([*(ROOT / "tools").glob("*.py"), *(ROOT / "scripts").iterdir()]),
                         ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_file_of_tools_and_scripts_says_what_it_is_and_who_runs_it(path):
    opening = " ".join(path.read_text().splitlines()[:6]).lower().replace("# ", " ")
    assert any(kind in " ".join(opening.split()) for kind in KINDS), f"{path.name} opens without saying what it is"
