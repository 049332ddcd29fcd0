"""Scenarios: what a run measures, read from a YAML file or built from command-line flags.

One job per module:
    strict.py        the shared base model (unknown keys refused, frozen) and the name pattern
    workload.py      Workload, the endpoints and the built-in workloads
    app_spec.py      AppSpec: the `app:` / `apps:` part (a shipped app or a user's image)
    setup_spec.py    SetupSpec (a setup and its variant options), PinningSpec
    model.py         Scenario: the whole file, validated
    bounded_yaml.py  YAML read and parsed in bounded memory and time (hostile files)
    messages.py      pydantic's errors worded for the file's author: file, line, field path
    loading.py       parse_scenario, load_scenario, the shipped scenarios
    overrides.py     from_flags, apply_overrides, with_apps, with_option_everywhere

`from bench.scenario import ...` gives the public names below.
"""

from bench.errors import ScenarioError
from bench.scenario.app_spec import AppSpec
from bench.scenario.loading import load_scenario, parse_scenario, shipped
from bench.scenario.model import Scenario
from bench.scenario.overrides import apply_overrides, from_flags, with_apps, with_option_everywhere
from bench.scenario.setup_spec import PinningSpec, SetupSpec
from bench.scenario.workload import (BUILTIN_WORKLOADS, DEFAULT_WORKLOADS, ENDPOINTS, MIN_DURATION_S,
                                     Workload)

__all__ = ["AppSpec", "BUILTIN_WORKLOADS", "DEFAULT_WORKLOADS", "ENDPOINTS", "MIN_DURATION_S", "PinningSpec",
           "Scenario", "ScenarioError", "SetupSpec", "Workload", "apply_overrides", "from_flags", "load_scenario",
           "parse_scenario", "shipped", "with_apps", "with_option_everywhere"]
