"""Scenario files -> validated Scenario models, with one clear message per problem: every message
names the file, the field path and, where the YAML gives one, the line."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from bench.errors import ScenarioError
from bench.scenario.bounded_yaml import line_index, read_text
from bench.scenario.bounded_yaml import load as load_yaml
from bench.scenario.messages import messages
from bench.scenario.model import Scenario

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def parse_scenario(text: str, source: str = "<scenario>", overrides: dict | None = None) -> Scenario:
    """Validate scenario YAML text; ScenarioError with one line per problem."""
    data, root = load_yaml(text, source)  # bounded: size, aliases, depth; no duplicate keys
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1: a scenario is a mapping with name, setups, workloads, ..."])
    data.update(overrides or {})
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(messages(error, source, line_index(root))) from None


def shipped() -> dict[str, Path]:
    """Shipped scenario files by name."""
    return {path.stem: path for path in sorted(SCENARIO_DIR.glob("*.yaml"))}


def load_scenario(name_or_path: str, overrides: dict | None = None) -> Scenario:
    """A shipped scenario by name, or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix and name_or_path in shipped():
        path = shipped()[name_or_path]
    elif not path.exists():
        known = ", ".join(shipped()) or "none"
        raise ScenarioError([f"no scenario {name_or_path!r}: not a file, and not a shipped name ({known})"])
    return parse_scenario(read_text(path), str(path), overrides)
