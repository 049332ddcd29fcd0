"""Scenario files: valid ones load, every mistake gets its own message with file, field and line."""

from __future__ import annotations

import pytest

from bench.scenario import ScenarioError, from_flags, parse_scenario

GOOD = """
name: demo
description: two setups, two workloads
setups:
  - bare
workloads:
  - hello
  - {name: slowcpu, endpoint: cpu, param: 5000, mode: open, rate: 100, duration: 2}
repeat: 2
"""

THREE_MISTAKES = """
name: demo
setups:
  - bare
workloads:
  - {name: hello, endpoint: hello, duration: -3}
  - {name: cpu, endpoint: cpu, conections: 8}
repeat: many
"""


def test_a_good_scenario_loads_with_shorthands():
    scenario = parse_scenario(GOOD, "good.yaml")
    assert [spec.setup for spec in scenario.setups] == ["bare"]
    assert scenario.workloads[0].url_path == "/hello"
    assert scenario.workloads[1].url_path == "/cpu?n=5000"


def test_three_mistakes_give_three_messages_with_file_field_and_line():
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(THREE_MISTAKES, "bad.yaml")
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert any("bad.yaml:6: workloads.0.duration" in p and "greater than 0" in p for p in problems)
    assert any("bad.yaml:7: workloads.1.conections: unknown key" in p for p in problems)
    assert any("bad.yaml:8: repeat" in p for p in problems)


def test_unknown_setup_lists_the_valid_names():
    with pytest.raises(ScenarioError, match="choose from: bare"):
        parse_scenario("name: x\nsetups: [hyperv]\nworkloads: [hello]\n", "x.yaml")


def test_open_loop_needs_a_rate_and_yaml_errors_have_a_line():
    with pytest.raises(ScenarioError, match="needs a rate"):
        parse_scenario("name: x\nsetups: [bare]\nworkloads: [{name: h, endpoint: hello, mode: open}]\n")
    with pytest.raises(ScenarioError, match=r"x.yaml:\d+: not valid YAML"):
        parse_scenario("name: x\nsetups: [bare\n", "x.yaml")


def test_flags_build_a_scenario_and_override_durations():
    scenario = from_flags(["bare"], ["hello", "cpu"], duration=2.0, connections=4, repeat=1)
    assert {w.duration for w in scenario.workloads} == {2.0}
    assert {w.connections for w in scenario.workloads} == {4}
    with pytest.raises(ScenarioError, match="unknown workload 'nope'"):
        from_flags(["bare"], ["nope"])
