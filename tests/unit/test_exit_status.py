"""How `bench run` exits when it could not do all it was asked: a setup named with --setups that
cannot run here is skipped with a distinct status (4); one only listed in a scenario file is not.
A run that measured no trial at all is never a success (bench.outcome), unless --allow-empty."""

from __future__ import annotations

from typer.testing import CliRunner

from bench.cli import app
from bench.errors import ExitStatus, SetupError
from tests.fake_setup import InProcessSetup, registered

runner = CliRunner()
FAST = ["--workloads", "hello", "--duration", "0.3", "--warmup", "0", "--repeat", "1", "--connections", "1",
        "--no-report"]


def test_a_setup_named_with_setups_and_skipped_exits_with_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    with registered():
        outcome = runner.invoke(app, ["run", "--setups", "bare,inproc", *FAST, "--out", str(tmp_path)])
    assert outcome.exit_code == ExitStatus.SKIPPED == 4, outcome.output
    assert "skipping inproc: not on this machine (test)" in outcome.output


def test_a_setup_skipped_from_a_scenario_file_exits_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nsetups: [bare, inproc]\nworkloads: [hello]\n")
    with registered():
        outcome = runner.invoke(app, ["run", str(scenario), *FAST, "--out", str(tmp_path / "r")])
    assert outcome.exit_code == 0, outcome.output


def test_every_setup_measured_exits_zero(tmp_path):
    with registered():
        outcome = runner.invoke(app, ["run", "--setups", "bare,inproc", *FAST, "--out", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output


# ---- no trial measured is not a success -----------------------------------------------------


def _missing_image(reference, client=None):
    # What bench.images.exported.inspect_image says when the engine has no such image (unit tests run no engine).
    raise SetupError(f"image {reference} is not present locally and layerbench never pulls: build it or "
                     f"`docker load` it first (docker image ls lists what is here)")


def test_a_user_image_that_is_not_here_is_one_line_and_exit_1_with_nothing_stored(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.images.exported.inspect_image", _missing_image)
    scenario = tmp_path / "s.yaml"
    scenario.write_text('name: nope\napp: {image: "nope/x:1", port: 8080, path: /}\nsetups: [bare]\n'
                        'workloads: [hello]\n')
    outcome = runner.invoke(app, ["run", str(scenario), *FAST, "--out", str(tmp_path / "r")])
    assert outcome.exit_code == ExitStatus.ERROR == 1, outcome.output
    assert outcome.output.splitlines() == ["error: image nope/x:1 is not present locally and layerbench never pulls: "
                                           "build it or `docker load` it first (docker image ls lists what is here)"]
    assert not (tmp_path / "r").exists()  # no run folder claiming 0 of 0 trials complete


def test_a_run_whose_every_setup_is_skipped_exits_1_saying_why(tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nsetups: [inproc]\nworkloads: [hello]\n")
    with registered():
        outcome = runner.invoke(app, ["run", str(scenario), *FAST, "--out", str(tmp_path / "a")])
        allowed = runner.invoke(app, ["run", str(scenario), *FAST, "--out", str(tmp_path / "b"), "--allow-empty"])
    assert outcome.exit_code == ExitStatus.ERROR, outcome.output
    assert outcome.output.splitlines()[-1] == ("error: nothing measured: every setup was skipped: not on this machine "
                                               "(test) (--allow-empty accepts an empty run)")
    assert allowed.exit_code == ExitStatus.OK, allowed.output  # skipped from a scenario file: allowed, then 0


def test_a_run_whose_every_trial_failed_exits_1_and_allow_empty_gives_back_incomplete(tmp_path, monkeypatch):
    def refuse(self):
        raise SetupError("the fake engine refused to start")
    monkeypatch.setattr(InProcessSetup, "_launch", refuse)
    with registered():
        outcome = runner.invoke(app, ["run", "--setups", "inproc", *FAST, "--out", str(tmp_path / "a")])
        allowed = runner.invoke(app, ["run", "--setups", "inproc", *FAST, "--out", str(tmp_path / "b"), "--allow-empty"])
    assert outcome.exit_code == ExitStatus.ERROR, outcome.output
    assert "error: nothing measured: all 1 trial(s) failed (first: the fake engine refused to start)" in outcome.output
    assert allowed.exit_code == ExitStatus.INCOMPLETE, allowed.output


def test_a_setup_named_with_setups_that_is_the_only_one_and_skipped_exits_1(tmp_path, monkeypatch):
    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    with registered():
        outcome = runner.invoke(app, ["run", "--setups", "inproc", *FAST, "--out", str(tmp_path / "a")])
        allowed = runner.invoke(app, ["run", "--setups", "inproc", *FAST, "--out", str(tmp_path / "b"), "--allow-empty"])
    assert outcome.exit_code == ExitStatus.ERROR, outcome.output
    assert allowed.exit_code == ExitStatus.SKIPPED, allowed.output


def test_a_fleet_host_that_measured_nothing_fails_saying_why(tmp_path, monkeypatch, capsys):
    """A host's worker (bench remote-run) follows the same rule: exit 1 and the reason, not "complete"."""
    import io
    import json

    from bench.fleet.worker import Emitter, run_job
    from bench.scenario import Scenario

    monkeypatch.setattr(InProcessSetup, "check", classmethod(lambda cls: "not on this machine (test)"))
    with registered():
        scenario = Scenario.model_validate({"name": "s", "setups": ["inproc"], "workloads": ["hello"]})
        job = tmp_path / "job.json"
        job.write_text(json.dumps({"scenario": scenario.model_dump(mode="json")}))
        lines = io.StringIO()
        status = run_job(job, tmp_path / "out", emit=Emitter(lines))
    assert status == ExitStatus.ERROR
    result = json.loads(lines.getvalue().splitlines()[-1])  # what the control host shows for the host
    assert result["kind"] == "result" and result["error"].startswith("nothing measured: every setup was skipped")
    assert capsys.readouterr().err.strip() == "nothing measured: every setup was skipped: not on this machine (test)"
