"""Scenarios changed by the command line: built from flags (`bench run --setups ... --workloads ...`),
an option set on every setup that declares it, other apps, other durations and counts."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bench.errors import ScenarioError
from bench.scenario.messages import messages
from bench.scenario.model import Scenario
from bench.scenario.workload import BUILTIN_WORKLOADS


def from_flags(setups: list[str], workloads: list[str], **fields: Any) -> Scenario:
    """A scenario built from command-line flags (bench run --setups ... --workloads ...)."""
    unknown = [name for name in workloads if name not in BUILTIN_WORKLOADS]
    if unknown:
        raise ScenarioError([f"--workloads: unknown workload {', '.join(map(repr, unknown))}; "
                             f"choose from: {', '.join(BUILTIN_WORKLOADS)}"])
    workload_fields = {k: fields.pop(k) for k in ("duration", "connections", "warmup") if k in fields}
    data = {"name": "adhoc", "description": "built from command-line flags", "setups": setups,
            "workloads": workloads, **{k: v for k, v in fields.items() if v is not None}}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(messages(error, "command line", {})) from None
    return apply_overrides(scenario, **workload_fields)


def with_option_everywhere(scenario: Scenario, options: dict[str, Any]) -> Scenario:
    """The scenario with each option set on every setup whose options declare it (--kernel and
    --accel reach every setup that boots a kernel, whatever it is called)."""
    from bench.setups import registry

    data = scenario.model_dump()
    for spec in data["setups"]:
        fields = registry.get(spec["setup"]).Options.model_fields
        spec["options"] = {**spec["options"], **{k: v for k, v in options.items() if k in fields}}
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(messages(error, "command line", {})) from None


def _named_workloads(scenario: Scenario, chosen: list) -> list[dict]:
    """--workloads names: the scenario's own workload of that name, else the built-in one."""
    own = {workload.name: workload.model_dump() for workload in scenario.workloads}
    unknown = [item for item in chosen if isinstance(item, str) and item not in own and item not in BUILTIN_WORKLOADS]
    if unknown:
        raise ScenarioError([f"--workloads: unknown workload {', '.join(map(repr, unknown))}; choose from: "
                             f"{', '.join(dict.fromkeys([*own, *BUILTIN_WORKLOADS]))}"])
    return [(own.get(item) or BUILTIN_WORKLOADS[item].model_dump()) if isinstance(item, str) else item
            for item in chosen]


def with_apps(scenario: Scenario, names: list[str]) -> Scenario:
    """The scenario running these shipped apps instead of its own (bench run --app python,nginx)."""
    data = scenario.model_dump()
    data["app"], data["apps"] = None, names
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(messages(error, "--app", {})) from None


def apply_overrides(scenario: Scenario, **fields: Any) -> Scenario:
    """Command-line flags override scenario fields: duration/connections/warmup reach every load workload."""
    workload_fields = {k: fields.pop(k) for k in ("duration", "connections", "warmup") if fields.get(k) is not None}
    data = scenario.model_dump()
    data.update({k: v for k, v in fields.items() if v is not None})
    data["workloads"] = _named_workloads(scenario, data["workloads"])
    for workload in data["workloads"]:
        if workload["kind"] == "load" or "duration" in workload_fields:
            workload.update({k: v for k, v in workload_fields.items() if workload["kind"] == "load" or k != "connections"})
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(messages(error, "command line", {})) from None
