"""Exports of the frozen SYNTHETIC fixture run (and edited copies): markdown to paste, csv for a
spreadsheet, json for tools; each with a cell of no measurable difference and a failed cell."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench.cli import app
from bench.compare import compare
from bench.outputs.export import FORMATS, export_comparison, export_run
from bench.outputs.export.csv import comparison_header, run_header
from bench.model import Run
from bench.outputs.terminal import overhead_tables
from tests.unit.test_plots import copy_run

runner = CliRunner()


def fail_cell(data: dict, setup: str, variant: str, workload: str) -> None:
    """Edit a run.json: every trial of one cell failed (no figures, an error)."""
    for trial in data["trials"]:
        if (trial["setup"], trial["variant"], trial["workload"]) == (setup, variant, workload):
            trial.update(status="failed", error="the setup stopped answering", load={}, cpu_us_per_request={},
                         memory_bytes={}, startup_s=None)


@pytest.fixture(scope="module")
def with_failed(tmp_path_factory) -> Run:
    """The fixture with vm (tcg) / cpu failed in both repeats."""
    return Run.load(copy_run(tmp_path_factory.mktemp("failed"), lambda d: fail_cell(d, "vm", "tcg", "cpu")))


def _markdown_rows(text: str) -> list[list[str]]:
    table = [line for line in text.splitlines() if line.startswith("|")]
    widths = {line.replace("\\|", "").count("|") for line in table}
    assert len(widths) == 1, "every row of the table has as many cells as its header"
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table]


def test_markdown_run_has_units_intervals_verdicts_and_the_failed_cell(with_failed):
    text = export_run(with_failed, "markdown")
    rows = _markdown_rows(text)
    header = rows[0]
    assert header[:3] == ["layer", "workload", "n"] and "throughput (req/s)" in header and "p99 latency (ms)" in header
    assert "vs bare" in header and "CPU per request (µs)" in header
    by_cell = {(row[0], row[1]): dict(zip(header, row)) for row in rows[2:]}
    bare = by_cell[("bare", "hello")]
    estimate = with_failed.cell("bare", "default", "hello").estimate("throughput_rps")
    assert bare["throughput (req/s)"] == f"{estimate.median:,.0f} [{estimate.low:,.0f}–{estimate.high:,.0f}]"
    assert bare["vs bare"] == "baseline"
    same = by_cell[("container (host)", "cpu")]["vs bare"]
    assert "throughput: **undecided** 0.99 [0.82–1.19]" in same
    assert "throughput: **worse**, 20.6x slower" in by_cell[("vm (tcg)", "hello")]["vs bare"]
    failed = by_cell[("vm (tcg)", "cpu")]
    assert failed["n"] == "0" and failed["throughput (req/s)"] == "–" and "2 failed" in failed["notes"]
    assert "start-up: " in by_cell[("vm (tcg)", "start-up (every start)")]["vs bare"]
    assert "Warning: Failed trials in 1 cell(s), 2 trial(s); the first: the setup stopped answering" in text


def test_markdown_escapes_what_would_break_a_table(tmp_path):
    def hostile(data):
        for trial in data["trials"]:
            if trial["variant"] == "host":
                trial["variant"] = "a|b<script>\nx"
    text = export_run(Run.load(copy_run(tmp_path, hostile)), "markdown")
    assert "container (a\\|b&lt;script&gt; x)" in text and "<script>" not in text
    _markdown_rows(text)


def test_csv_run_is_one_row_per_cell_with_stable_unit_columns(with_failed):
    text = export_run(with_failed, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == run_header()
    assert {"throughput_rps_median", "throughput_rps_low", "throughput_rps_high", "latency_p99_ms_median",
            "cpu_us_per_request_ratio_low", "startup_s_verdict"} <= set(run_header())
    cells = {(row["label"], row["workload"]): row for row in rows}
    assert len([row for row in rows if row["workload"] != "start-up"]) == len(with_failed.cells)
    same = cells[("container (host)", "hello")]
    assert same["throughput_rps_verdict"] == "undecided" and same["throughput_rps_rounds"] == "2"
    assert float(same["throughput_rps_ratio_low"]) < 1 < float(same["throughput_rps_ratio_high"])
    failed = cells[("vm (tcg)", "cpu")]
    assert (failed["repeats"], failed["failed"], failed["throughput_rps_median"]) == ("0", "2", "")
    slower = cells[("vm (tcg)", "hello")]
    assert float(slower["throughput_rps_ratio_high"]) < 1 and slower["throughput_rps_verdict"] == "worse"
    assert float(cells[("bare", "hello")]["throughput_rps_median"]) == pytest.approx(
        with_failed.cell("bare", "default", "hello").estimate("throughput_rps").median, rel=1e-6)


def _slower(factor: float, setup: str, variant: str, workload: str):
    def edit(data):
        for trial in data["trials"]:
            if (trial["setup"], trial["variant"], trial["workload"]) == (setup, variant, workload):
                trial["load"]["throughput_rps"] *= factor
        data["run_id"] = "new-run"
    return edit


def test_compare_exports_markdown_csv_and_json(tmp_path):
    base = Run.load(copy_run(tmp_path / "base"))
    new = Run.load(copy_run(tmp_path / "new", lambda d: (_slower(0.5, "vm", "tcg", "hello")(d),
                                                         fail_cell(d, "container", "host", "cpu"))))
    comparison = compare([base, new])
    rows = _markdown_rows(export_comparison(comparison, "markdown"))
    assert rows[0] == ["layer", "workload", "figure", "run 1", "run 2", "run 2 ÷ run 1"]
    line = next(row for row in rows if row[:3] == ["vm (tcg)", "hello", "throughput (req/s)"])
    assert line[5].startswith("0.50 [") and line[5].endswith(" worse")
    assert next(row for row in rows if row[:3] == ["bare", "hello", "throughput (req/s)"])[5].endswith(" same")
    table = list(csv.DictReader(io.StringIO(export_comparison(comparison, "csv"))))
    assert list(table[0]) == comparison_header(2)
    vm = next(row for row in table if (row["label"], row["workload"]) == ("vm (tcg)", "hello"))
    assert float(vm["throughput_rps_run2_ratio"]) == pytest.approx(0.5)
    failed = next(row for row in table if (row["label"], row["workload"]) == ("container (host)", "cpu"))
    assert failed["throughput_rps_run2_median"] == "" and failed["throughput_rps_run1_median"] != ""
    assert json.loads(export_comparison(comparison, "json")) == json.loads(json.dumps(comparison.as_dict()))


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_show_and_compare_print_each_format(tmp_path, format_name):
    first, second = copy_run(tmp_path / "a"), copy_run(tmp_path / "b")
    shown = runner.invoke(app, ["show", str(first), "--format", format_name])
    compared = runner.invoke(app, ["compare", str(first), str(second), "--format", format_name])
    assert shown.exit_code == 0 and compared.exit_code == 0, (shown.output, compared.output)
    assert "container (bridge)" in shown.output and "container (bridge)" in compared.output
    assert not (tmp_path / f"compare-{first.name}-vs-{second.name}").exists()  # printed, no page
    assert runner.invoke(app, ["show", str(first), "--format", "xml"]).exit_code == 1


def test_the_verdict_matrices_fit_80_columns(tmp_path):
    run = Run.load(copy_run(tmp_path))
    console = Console(width=80, record=True, file=io.StringIO())
    for table in overhead_tables(run):
        console.print(table)
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    headers = " ".join(line for line in text.splitlines() if line.startswith("setup"))
    for title in ("throughput", "p99 latency", "CPU per request", "memory, PSS", "start-up"):
        assert title in headers
    assert "8.31×" in text and "[7.60–9.07]" in text  # the last column is whole, not cropped
    assert "0.97×" in text and "undecided" in text and "0.05×" in text and "worse" in text
    rows = [line for line in text.splitlines() if line.startswith(("container", "vm"))]
    request = {(row.label, row.workload) for row in run.overhead if row.workload in ("hello", "cpu")}
    assert len(rows) == len(request) + len({row.label for row in run.overhead})  # per layer and workload, per layer


# ---- one escaping path per format ----------------------------------------------------------------

ESCAPES = "\x1b]0;owned\x07\x1b[2J"  # what an image may print: retitles the terminal, clears the screen
FORMULAS = {"run_id": "=HYPERLINK(\"http://evil.example\",\"x\")", "variant": "+cmd|' /C calc'!A0",
            "workload": "-2+3+cmd|' /C calc'!A0", "app": "@SUM(1+1)*cmd|' /C calc'!A0"}


def _hostile_run_json(data):
    """Every text of run.json a user or an image controls: formulas, control characters, a newline."""
    data["run_id"] = FORMULAS["run_id"] + ESCAPES
    data["scenario"]["name"] = "s\n" + ESCAPES
    data["skipped"] = [{"setup": "vm", "variant": "vm", "reason": "the image said " + ESCAPES}]
    for trial in data["trials"]:
        trial["app"] = FORMULAS["app"]
        if trial["variant"] == "host":
            trial["variant"] = FORMULAS["variant"] + "\n" + ESCAPES
        if trial["workload"] == "cpu":
            trial["workload"] = FORMULAS["workload"] + ESCAPES
    fail_cell(data, "bare", "default", "hello")
    for trial in data["trials"]:
        if trial["status"] == "failed":
            trial["error"] = "app printed " + ESCAPES + " then died"


def _controls(text: str) -> set[str]:
    """Control and invisible formatting characters, the line break of the format aside."""
    return {ch for ch in text if ch != "\n" and not ch.isprintable()}


@pytest.fixture(scope="module")
def hostile_outputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hostile")
    run = Run.load(copy_run(folder / "a", _hostile_run_json))
    other = Run.load(copy_run(folder / "b", _hostile_run_json))
    return {**{f"run {name}": export_run(run, name) for name in FORMATS},
            **{f"comparison {name}": export_comparison(compare([run, other]), name) for name in FORMATS}}


@pytest.mark.parametrize("output", ["run markdown", "comparison markdown", "run csv", "comparison csv", "run json",
                                    "comparison json"])
def test_no_export_lets_a_control_character_through(hostile_outputs, output):
    assert _controls(hostile_outputs[output]) == set(), output


def test_markdown_shows_an_images_escapes_in_a_failed_trial_as_text(hostile_outputs):
    text = hostile_outputs["run markdown"]
    bullet = next(line for line in text.splitlines() if line.startswith("- Warning: Failed trials"))
    assert "app printed \\\\x1b]0;owned\\\\x07\\\\x1b[2J then died" in bullet  # \x1b in the rendered page
    _markdown_rows(text)


@pytest.mark.parametrize("output", ["run csv", "comparison csv"])
def test_csv_cells_never_start_a_formula_and_hold_no_raw_newline(hostile_outputs, output):
    text = hostile_outputs[output]
    rows = list(csv.reader(io.StringIO(text)))
    assert len(text.splitlines()) == len(rows)  # a newline inside a cell would split a physical line
    cells = [cell for row in rows for cell in row]
    for cell in cells:
        assert not re.match(r"\s*[=+\-@\uff1d\uff0b\uff0d\uff20]", cell) or re.fullmatch(r"-?[\d.e+-]+", cell), cell
    assert "'" + FORMULAS["app"] in cells  # shown whole, made text the OWASP way
    if output == "run csv":
        assert "'" + FORMULAS["run_id"] + "\\x1b]0;owned\\x07\\x1b[2J" in cells
        assert "'" + FORMULAS["variant"] + "\\n\\x1b]0;owned\\x07\\x1b[2J" in cells
        assert "'" + FORMULAS["workload"] + "\\x1b]0;owned\\x07\\x1b[2J" in cells
