"""Text from users and from run.json reaches the terminal as text: rich markup is shown, never
interpreted (no swallowed words, no links, no crash), and control characters (a terminal title,
a screen clear) are shown escaped, in run, show, compare, list, scenarios, doctor and progress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.runner import Runner
from bench.scenario import parse_scenario
from tests.fake_setup import registered

runner = CliRunner()
ENV = {"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
MARKUP = "[/b]x[bold]y[link=http://evil.example]z"  # an unbalanced close tag used to crash rich
ESCAPES = "t\x1b]0;owned\x07c\x1b[2Jd"  # sets the terminal's title, clears the screen
SHOWN_ESCAPES = "t\\x1b]0;owned\\x07c\\x1b[2Jd"  # how they must appear
WORKLOAD = "w[link=http://evil.example]"


def _visible(output: str, *texts: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, repr(output[:400])
    for text in texts:
        assert text in output, f"{text!r} not shown in:\n{output}"


def _scenario_text(flavour: str, description: str = "") -> str:
    return (f"name: hostile\ndescription: {json.dumps(description)}\nsetups: [bare, {{inproc: {{flavour: "
            f"{json.dumps(flavour)}}}}}]\nworkloads: [{{name: hello, endpoint: hello, duration: 0.4, warmup: 0.1, "
            f"connections: 2}}]\nrepeat: 1\n")


# One worker runs this module: its module fixture (the hostile run) is then made once, not once per worker.
pytestmark = pytest.mark.xdist_group("hostile_terminal")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A real run whose variant is markup and escapes, with a hand-edited workload name and scenario."""
    folder = tmp_path_factory.mktemp("hostile")
    with registered():
        run_dir = Runner(parse_scenario(_scenario_text(MARKUP + ESCAPES)), folder).run()
    data = json.loads((run_dir / "run.json").read_text())
    for trial in data["trials"]:
        trial["workload"] = WORKLOAD
        trial["error"] = MARKUP
    data["scenario"]["name"] = "n" + MARKUP + ESCAPES
    data["skipped"] = [{"setup": "vm", "variant": "vm", "reason": MARKUP + ESCAPES}]
    (run_dir / "run.json").write_text(json.dumps(data))
    return run_dir


def test_run_prints_a_hostile_variant_and_description_as_text_in_progress_and_summary(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(_scenario_text(MARKUP + ESCAPES, description="d" + MARKUP + ESCAPES))
    with registered():
        outcome = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "r")], env=ENV)
    assert outcome.exit_code == 0, outcome.output
    _visible(outcome.output, "d" + MARKUP + SHOWN_ESCAPES, f"inproc ({MARKUP}{SHOWN_ESCAPES})")
    progress = [line for line in outcome.output.splitlines() if "req/s, p99" in line and "inproc" in line]
    assert progress and MARKUP in progress[0]  # the line per finished trial
    assert (tmp_path / "r").is_dir() and list((tmp_path / "r").glob("*/report.html"))  # not cut short


def test_show_list_and_report_print_hostile_run_json_fields_as_text(hostile_run):
    shown = runner.invoke(app, ["show", str(hostile_run)], env=ENV)
    assert shown.exit_code == 0, shown.output
    _visible(shown.output, WORKLOAD, MARKUP + SHOWN_ESCAPES, f"n{MARKUP}{SHOWN_ESCAPES}")
    listed = runner.invoke(app, ["list", "--results", str(hostile_run.parent)], env=ENV)
    assert listed.exit_code == 0, listed.output
    _visible(listed.output, f"n{MARKUP}{SHOWN_ESCAPES}", WORKLOAD)
    reported = runner.invoke(app, ["report", str(hostile_run)], env=ENV)
    assert reported.exit_code == 0, reported.output
    _visible(reported.output)


def test_compare_prints_hostile_warnings_as_text(hostile_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(hostile_run, other)
    data = json.loads((other / "run.json").read_text())
    data["scenario"]["name"] = "o" + MARKUP + ESCAPES
    data["scenario"]["repeat"] = 2  # differs: compare warns and quotes both names
    data["machine"]["cpu_model"] = MARKUP + ESCAPES
    (other / "run.json").write_text(json.dumps(data))
    outcome = runner.invoke(app, ["compare", str(hostile_run), str(other), "--out", str(tmp_path / "c")], env=ENV)
    assert outcome.exit_code == 0, outcome.output
    _visible(outcome.output, WORKLOAD, "scenario differs", "machine differs")
    assert MARKUP in outcome.output and "\\x1b]0;owned" in outcome.output


def test_scenarios_and_doctor_print_hostile_text_as_text(tmp_path, monkeypatch):
    import bench.scenario.loading as scenario_module

    (tmp_path / "evil.yaml").write_text(f"name: evil\ndescription: {json.dumps(MARKUP + ESCAPES)}\nsetups: [bare]\n"
                                        f"workloads: [hello]\n")
    (tmp_path / "broken.yaml").write_text(f"name: broken\nsetups: [{json.dumps(MARKUP)}]\nworkloads: [hello]\n")
    monkeypatch.setattr(scenario_module, "SCENARIO_DIR", tmp_path)
    listed = runner.invoke(app, ["scenarios"], env=ENV)
    assert listed.exit_code == 0, listed.output
    _visible(listed.output, MARKUP + SHOWN_ESCAPES, f"unknown setup '{MARKUP}'")
    from bench.setups.container.podman import PodmanContainerSetup

    # Podman's lines (podman info: 0.6 s alone, seconds when another podman holds its lock) echo nothing
    # of ours; Docker's do, and Docker is unreachable here. tests/integration runs doctor whole.
    monkeypatch.setattr(PodmanContainerSetup, "engine_doctor_lines", classmethod(lambda cls: []))
    doctor = runner.invoke(app, ["doctor"], env={**ENV, "DOCKER_HOST": "unix:///tmp/" + MARKUP})
    assert doctor.exit_code == 0, doctor.output
    _visible(doctor.output)
    assert "[/b]x[bold]y" in doctor.output or "Docker" not in doctor.output, doctor.output


def test_a_kernel_path_with_markup_is_shown_as_text(tmp_path):
    from bench.setups.vm import VMSetup
    from tests.conftest import require

    require(VMSetup.check() is None, f"vm setup unavailable: {VMSetup.check()}")
    kernel = f"/nonexistent/{MARKUP}/bzImage"
    outcome = runner.invoke(app, ["run", "--setups", "bare,vm", "--kernel", kernel, "--workloads", "hello",
                                  "--duration", "0.3", "--warmup", "0", "--repeat", "1", "--out", str(tmp_path)],
                            env=ENV)
    assert outcome.exit_code == 4, outcome.output  # vm was named and skipped; the summary still printed
    _visible(outcome.output, str(Path(kernel)))  # as a path: "//" reads "/"
    assert "results:" in outcome.output and "skipping vm" in outcome.output
