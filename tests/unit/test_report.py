"""The HTML report and run comparison, from the frozen SYNTHETIC fixture run."""

from __future__ import annotations


import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.compare import compare_runs
from bench.outputs.compare_page import write_compare_report
from bench.model import Run
from bench.outputs.report import render_report, write_report
from bench.results import ResultsError
from tests.unit.test_plots import copy_run

SECTIONS = ('id="warnings"', 'id="headline"', 'id="layers"', 'id="overhead"', 'id="tables"', 'id="charts"',
            'id="settings"')


# One worker runs this module: its module fixture (the report) is then made once, not once per worker.
pytestmark = pytest.mark.xdist_group("report")


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    path = write_report(copy_run(tmp_path_factory.mktemp("report")))
    assert path.name == "report.html"
    return path.read_text()


def test_report_has_every_section(html):
    for section in SECTIONS:
        assert section in html
    assert html.count("data:image/png;base64,") >= 8  # charts are embedded: one self-contained file
    assert 'src="http' not in html and "<link" not in html


def test_report_shows_machine_settings_and_figures_from_the_results(html):
    for fact in ("SYNTHETIC CPU (fixture)", "6.1.0-18-amd64", "bench run small --duration 3 --repeat 2",
                 "app side on CPUs [1]", "20261129-071000-small-00001"):
        assert fact in html
    assert "undecided: run more rounds" in html and "costlier by" in html and "<b>worse</b>" in html
    assert html.index('id="headline"') < html.index('id="overhead"') < html.index('id="warnings"')  # verdicts first


def test_report_explains_each_layer_and_says_tcg_is_emulation(html):
    assert "bare: app → host kernel" in html
    assert "docker-proxy" in html and "NAT" in html and "overlayfs" in html
    assert "guest kernel + devices ≈" in html
    assert "TCG: software emulation" in html and "NOT what the same VM would cost under KVM" in html
    assert "container (bridge)" in html and "container [bridge]" not in html  # one label format


def test_report_warns_about_noise_failures_skips_and_an_unfinished_run(tmp_path):
    def troubled(data):
        data["status"] = "incomplete"
        failed = dict(data["trials"][0], trial_id="bare--hello--r9", repeat=9, status="failed",
                      error="app never answered /health within 30 s")
        data["trials"].append(failed)
        data["skipped"] = [{"setup": "vm", "variant": "kvm", "reason": "KVM test boot hung"}]

    html = render_report(Run.load(copy_run(tmp_path, troubled)), charts={})  # text only: fast
    assert "This run is incomplete" in html
    assert "app never answered /health within 30 s" in html
    assert "Skipped kvm: KVM test boot hung" in html
    # One line per kind of doubt, the most serious first: the unfinished run, then the failed trial.
    doubts = html[html.index('id="warnings"'):html.index('id="apps"') if 'id="apps"' in html else None]
    assert doubts.index("This run is incomplete") < doubts.index("Failed trials in 1 cell(s)")
    assert "Noisy cells (rounds spread more than 10%) in 1 cell(s), up to 32%: container (bridge) / hello" in doubts
    assert "<details class=\"warnings\" open>" in html  # a doubt over every figure is not folded away


def test_report_escapes_names_from_user_files(tmp_path):
    attack = "<script>alert(1)</script>"

    def hostile(data):
        data["scenario"]["name"] = attack
        data["scenario"]["description"] = f"<img src=x onerror=alert(2)> {attack}"
        data["skipped"] = [{"setup": "vm", "variant": attack, "reason": attack}]

    html = render_report(Run.load(copy_run(tmp_path, hostile)), charts={})
    assert "<script" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_layer_colour_that_is_not_a_colour_reaches_no_output(tmp_path):
    """run.json is user-editable: a layer's colour goes into style attributes, chart colours and
    terminal styles, so the model gives #rrggbb or a hue of its own, never the stored text."""
    attack = 'red" onmouseover="alert(1)'

    run = Run.load(copy_run(tmp_path))
    for layer in run.layers:  # as a run.json of format 2 or later would store it
        layer.colour = attack
    assert all(len(run.colour(*key)) == 7 and run.colour(*key).startswith("#") for key in run.layer_keys)
    html = render_report(run, charts={})
    assert "onmouseover" not in html and "alert(1)" not in html


def test_compare_matches_cells_and_gives_ratios_to_the_first_run(tmp_path):
    first = copy_run(tmp_path / "a")

    def faster(data):
        data["run_id"] = "second"
        for trial in data["trials"]:
            trial["load"]["throughput_rps"] *= 1.5

    second = copy_run(tmp_path / "b", faster)
    comparison = compare_runs([first, second])
    assert comparison.caveats == []
    row = next(r for r in comparison.rows if (r.setup, r.workload, r.metric) == ("bare", "hello", "throughput_rps"))
    assert row.entries[0].ratio is None
    ratio = row.entries[1].ratio
    assert ratio.median == pytest.approx(1.5)
    assert ratio.low <= 1.5 <= ratio.high
    page = write_compare_report(comparison, tmp_path / "cmp")
    assert page.is_file() and (tmp_path / "cmp" / "compare.png").is_file()


def test_compare_warns_when_machines_pinning_or_scenarios_differ(tmp_path):
    def elsewhere(data):
        data["run_id"] = "elsewhere"
        data["machine"]["cpu_model"] = "Another CPU"
        data["machine"]["kernel"] = "6.12.0"
        data["pinning"] = {"app_cpus": [0], "load_cpus": [1]}
        data["scenario"]["repeat"] = 5

    caveats = compare_runs([copy_run(tmp_path / "a"), copy_run(tmp_path / "b", elsewhere)]).caveats
    text = "\n".join(caveat.text for caveat in caveats)
    assert "cpu_model" in text and "Another CPU" in text and "kernel" in text
    assert "pinning differs" in text
    assert "scenario differs" in text


def test_compare_needs_two_runs(tmp_path):
    with pytest.raises(ResultsError, match="at least two"):
        compare_runs([copy_run(tmp_path)])


def test_cli_report_and_compare(tmp_path):
    run_dir = copy_run(tmp_path / "a")
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").is_file()
    other = copy_run(tmp_path / "b", lambda data: data["machine"].update(cpu_model="Other"))
    result = runner.invoke(app, ["compare", str(run_dir), str(other), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "machine differs" in result.output and "compare.html" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 1
