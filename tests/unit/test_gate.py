"""The regression gate on edited copies of the frozen SYNTHETIC fixture: a real regression fails,
a change within noise passes, a missing cell fails with its own message; thresholds from the
command line or from the scenario file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.compare import compare
from bench.errors import ExitStatus, ScenarioError
from bench.gate import Threshold, check, parse_thresholds
from bench.model import Run
from bench.scenario import parse_scenario
from tests.unit.test_export import fail_cell
from tests.unit.test_plots import copy_run

runner = CliRunner()
RULES = "throughput_rps:-10%,latency_p99_ms:+20%"


def _scaled(factor: float, setup: str, variant: str, workload: str, gate: dict | None = None):
    """An edit of run.json: one cell's throughput times `factor` in every repeat (a new run id)."""
    def edit(data):
        data["run_id"] = "new-run"
        for trial in data["trials"]:
            if (trial["setup"], trial["variant"], trial["workload"]) == (setup, variant, workload):
                trial["load"]["throughput_rps"] *= factor
        if gate is not None:
            data["scenario"]["gate"] = gate
    return edit


def _runs(tmp_path, edit) -> tuple[Run, Run]:
    return Run.load(copy_run(tmp_path / "base")), Run.load(copy_run(tmp_path / "new", edit))


def test_thresholds_parse_with_their_bad_direction():
    assert parse_thresholds(RULES) == (Threshold("throughput_rps", -10.0), Threshold("latency_p99_ms", 20.0))
    assert parse_thresholds({"cpu_us_per_request": "15%"}) == (Threshold("cpu_us_per_request", 15.0),)
    assert parse_thresholds("throughput_rps: 5 %")[0].limit == pytest.approx(0.95)


@pytest.mark.parametrize("spec, problem", [
    ("throughput:-10%", "unknown metric 'throughput'; choose from: throughput_rps"),
    ("throughput_rps:+10%", "higher is better, so a regression is a drop: write -10%, not +10%"),
    ("latency_p99_ms:-20%", "lower is better, so a regression is a rise: write +20%"),
    ("throughput_rps:-10", "a percentage such as -10% or +20%"),
    ("throughput_rps:-100%", "above 0% and below 100%"),
    ("throughput_rps", "write metric:threshold"),
    ("throughput_rps:-5%,throughput_rps:-10%", "named twice: throughput_rps"),
    (",", "no threshold given")])
def test_bad_thresholds_say_what_is_wrong(spec, problem):
    with pytest.raises(ValueError) as raised:
        parse_thresholds(spec)
    assert problem in str(raised.value)


def test_a_real_regression_fails_and_says_by_how_much(tmp_path):
    base, new = _runs(tmp_path, _scaled(0.6, "container", "host", "cpu"))
    result = check(compare([base, new]), parse_thresholds(RULES))
    assert not result.passed
    [failure] = result.failures
    assert failure.kind == "regression" and failure.subject == "container (host) / cpu"
    assert "throughput -40.0% [" in failure.text and "in new-run, beyond the -10% threshold" in failure.text
    outcome = runner.invoke(app, ["compare", str(tmp_path / "base" / "run"), str(tmp_path / "new" / "run"),
                                  "--fail-on", RULES, "--out", str(tmp_path / "page")])
    assert outcome.exit_code == ExitStatus.REGRESSION == 5
    assert "FAIL container (host) / cpu: throughput -40.0%" in outcome.output
    assert "gate failed: 1 problem(s) in" in outcome.output


def test_the_same_figures_within_noise_pass(tmp_path):
    # container (bridge) / hello spreads 32% over its repeats: a 15% lower median is past the
    # threshold, but its interval reaches far above it, so the gate cannot call it a regression.
    base, new = _runs(tmp_path, _scaled(0.85, "container", "bridge", "hello"))
    comparison = compare([base, new])
    row = next(r for r in comparison.rows if (r.label, r.workload, r.metric) == ("container (bridge)", "hello",
                                                                                  "throughput_rps"))
    assert row.entries[1].ratio.median < 0.9 < row.entries[1].ratio.high
    result = check(comparison, parse_thresholds(RULES))
    assert result.passed and result.findings == () and result.checked == 16
    identical = check(compare([base, Run.load(copy_run(tmp_path / "same"))]), parse_thresholds(RULES))
    assert identical.passed
    outcome = runner.invoke(app, ["compare", str(tmp_path / "base" / "run"), str(tmp_path / "new" / "run"),
                                  "--fail-on", RULES, "--format", "csv"])
    assert outcome.exit_code == 0 and "gate passed: 16 checks" in outcome.output


def test_a_missing_cell_is_reported_and_fails(tmp_path):
    def drop(data):
        data["run_id"] = "new-run"
        data["trials"] = [t for t in data["trials"] if (t["setup"], t["workload"]) != ("vm", "cpu")]
    base, new = _runs(tmp_path, drop)
    result = check(compare([base, new]), parse_thresholds(RULES))
    assert [(f.kind, f.subject) for f in result.failures] == [("missing", "vm (tcg) / cpu")]
    assert "vm (tcg) / cpu: missing from new-run (it is in 20261129-071000-small-00001)" in result.failures[0].text
    failed = check(compare([base, Run.load(copy_run(tmp_path / "failed",
                                                    lambda d: fail_cell(d, "vm", "tcg", "cpu")))]),
                   parse_thresholds("throughput_rps:-10%"))
    assert [f.kind for f in failed.failures] == ["missing"] and "no throughput figure" in failed.failures[0].text


def test_thresholds_live_in_the_scenario_and_the_flag_overrides(tmp_path):
    base, new = _runs(tmp_path, _scaled(0.6, "container", "host", "cpu", gate={"throughput_rps": "-10%"}))
    paths = [str(tmp_path / "base" / "run"), str(tmp_path / "new" / "run"), "--out", str(tmp_path / "page")]
    assert runner.invoke(app, ["compare", *paths]).exit_code == ExitStatus.REGRESSION
    assert runner.invoke(app, ["compare", *paths, "--fail-on", "throughput_rps:-50%"]).exit_code == 0
    data = json.loads((tmp_path / "new" / "run" / "run.json").read_text())
    data["scenario"]["gate"] = {"throughput": "-10%"}
    (tmp_path / "new" / "run" / "run.json").write_text(json.dumps(data))
    outcome = runner.invoke(app, ["compare", *paths])
    assert outcome.exit_code == 1 and "the scenario gate: unknown metric 'throughput'" in outcome.output


def test_a_scenario_file_validates_its_gate():
    text = "name: g\nsetups: [bare]\nworkloads: [hello]\ngate:\n  throughput_rps: -10%\n  latency_p99_ms: 20%\n"
    assert parse_scenario(text).gate == {"throughput_rps": "-10%", "latency_p99_ms": "+20%"}
    assert parse_scenario(text.replace("gate:\n  throughput_rps: -10%\n  latency_p99_ms: 20%\n", "")).gate is None
    with pytest.raises(ScenarioError) as raised:
        parse_scenario("name: g\nsetups: [bare]\nworkloads: [hello]\ngate:\n  throughput_rps: +10%\n")
    assert raised.value.problems == ["<scenario>:4: gate: throughput_rps: higher is better, so a regression is a "
                                     "drop: write -10%, not +10%"]


# ---- no check made is not a pass; arguments before work (issue 22, items 2 and 12) ---------------


def _every_trial_failed(data):
    data["run_id"] = "failed-base"
    for trial in data["trials"]:
        trial.update(status="failed", error="the setup stopped answering", load={}, cpu_us_per_request={},
                     memory_bytes={}, startup_s=None)


def _pss_unreadable(data):
    for trial in data["trials"]:
        trial["memory_bytes"] = {key: value for key, value in trial["memory_bytes"].items() if "pss" not in key}


def test_a_gate_against_a_baseline_whose_every_trial_failed_fails_instead_of_passing_on_zero_checks(tmp_path):
    base, new = str(copy_run(tmp_path / "base", _every_trial_failed)), str(copy_run(tmp_path / "new"))
    outcome = runner.invoke(app, ["compare", base, new, "--fail-on", RULES, "--format", "csv"])
    assert outcome.exit_code == ExitStatus.REGRESSION, outcome.output
    assert "gate passed" not in outcome.output
    assert ("FAIL throughput_rps: no check made: no cell of failed-base has a throughput figure to compare (its "
            "trials failed or did not measure it); the gate cannot pass on nothing (--allow-empty accepts it)"
            in outcome.output)
    assert "gate failed: 2 problem(s) in 0 checks" in outcome.output
    allowed = runner.invoke(app, ["compare", base, new, "--fail-on", RULES, "--format", "csv", "--allow-empty"])
    assert allowed.exit_code == 0, allowed.output
    assert "note throughput_rps: no check made" in allowed.output and "accepted by --allow-empty" in allowed.output


def test_a_gated_metric_never_measured_fails_even_when_other_metrics_were_checked(tmp_path):
    base = Run.load(copy_run(tmp_path / "base", _pss_unreadable))
    new = Run.load(copy_run(tmp_path / "new", _pss_unreadable))
    alone = check(compare([base, new]), parse_thresholds("memory_pss_mb:+10%"))
    assert not alone.passed and alone.checked == 0
    assert [(f.kind, f.subject) for f in alone.failures] == [("missing", "memory_pss_mb")]
    assert "no cell of 20261129-071000-small-00001 has a memory, PSS figure" in alone.failures[0].text
    mixed = check(compare([base, new]), parse_thresholds("throughput_rps:-10%,memory_pss_mb:+10%"))
    assert mixed.checked > 0 and [f.subject for f in mixed.failures] == ["memory_pss_mb"]
    assert check(compare([base, new]), parse_thresholds("memory_pss_mb:+10%"), allow_empty=True).passed


@pytest.mark.parametrize("fail_on", ["throughput_rps", "bogus:-10%", "throughput_rps:+10%", ","])
def test_a_malformed_fail_on_is_the_only_output_and_nothing_is_written(tmp_path, fail_on):
    base, new = str(copy_run(tmp_path / "base")), str(copy_run(tmp_path / "new"))
    for format_name in ("table", "markdown"):
        outcome = runner.invoke(app, ["compare", base, new, "--fail-on", fail_on, "--format", format_name,
                                      "--out", str(tmp_path / "page")])
        assert outcome.exit_code == ExitStatus.ERROR, outcome.output
        [line] = outcome.output.splitlines()
        assert line.startswith("error: --fail-on: "), line
        assert not (tmp_path / "page").exists()
