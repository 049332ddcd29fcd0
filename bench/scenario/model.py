"""The scenario: which app (`app: python`, `nginx`, a user's `{image: NAME:TAG, ...}`, or several
with `apps: [python, nginx]`), what to run it in (setups and their variants), how hard (workloads),
how often (repeat) and in what order."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bench import gate
from bench.scenario.app_spec import AppSpec
from bench.scenario.setup_spec import PinningSpec, SetupSpec
from bench.scenario.strict import NAME_PATTERN, Strict
from bench.scenario.workload import BUILTIN_WORKLOADS, Workload
from bench.units import parse_duration_s, parse_fraction


class Scenario(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    app: AppSpec | None = None  # the one app (default: python) ...
    apps: list[AppSpec] | None = Field(default=None, min_length=1, max_length=8)  # ... or several, side by side
    setups: list[SetupSpec] = Field(min_length=1, max_length=32)
    workloads: list[Workload] = Field(min_length=1, max_length=64)
    # Rounds: every setup once per round, interleaved. A count, or "auto": add rounds until every
    # headline verdict is settled (worse, better or same; where no verdict applies, until every
    # interval is narrower than repeat_target of its median), at least 3, at most repeat_cap; the
    # run records what stopped it.
    repeat: int | Literal["auto"] = Field(default=3)
    repeat_target: float = Field(default=0.05, gt=0, lt=1)
    repeat_cap: int = Field(default=10, ge=3, le=100)
    # A time budget instead of a count ("3m", "90s" or seconds): as many rounds as fit (at least 2,
    # at most repeat_cap), stopping early once every headline verdict is settled.
    budget: float | None = Field(default=None, ge=10, le=86400)
    # The smallest change called a difference: worse or better needs the ratio this far from 1.00 and
    # an interval that excludes 1.00; same needs the whole interval within 1.00 +- it ("5%" or 0.05).
    min_effect: float = Field(default=0.05, ge=0.005, le=0.5)
    # Trials of each load workload per start (back to back): the spread within a start is then told
    # apart from the spread between starts, and a start that warms up is seen.
    trials_per_start: int = Field(default=1, ge=1, le=20)
    # remeasure_busy: a round in which others used more than BUSY_MACHINE_CORES is measured again (twice
    # at most, busy trials kept as "discarded"); wait_quiet: before each round, wait until the machine is quiet.
    remeasure_busy: bool = False
    wait_quiet: bool = False
    calibrate: bool = False  # the machine's speed beside every load trial, for calibrated. gate thresholds
    order: Literal["interleaved", "sequential"] = "interleaved"  # interleaved: each round's order shuffled
    start: Literal["per_repeat", "per_trial"] = "per_repeat"  # fresh start per repeat or per trial
    pinning: Literal["auto"] | PinningSpec = "auto"
    seed: int = Field(default=20261129, ge=0, le=2**32 - 1)
    # The regression gate `bench compare` applies to runs of this scenario (--fail-on overrides):
    # metric -> signed percentage, e.g. {throughput_rps: -10%, latency_p99_ms: +20%}.
    gate: dict[str, str] | None = None

    @field_validator("gate", mode="before")
    @classmethod
    def _gate_thresholds(cls, value: Any) -> Any:
        # Validated here, so a mistyped metric or a threshold in the wrong direction fails at load time.
        if value is None:
            return None
        return {threshold.key: threshold.text for threshold in gate.parse_thresholds(value)}

    @field_validator("min_effect", mode="before")
    @classmethod
    def _percentage(cls, value: Any) -> Any:
        # "5%" reads better in a scenario file than 0.05; both are accepted.
        if isinstance(value, str):
            fraction = parse_fraction(value)
            if fraction is None:
                raise ValueError("min_effect is a percentage such as 5%, or a fraction such as 0.05")
            return fraction
        return value

    @field_validator("budget", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        # "3m", "90s", "1m30s" or a number of seconds.
        if isinstance(value, str):
            seconds = parse_duration_s(value)
            if seconds is None:
                raise ValueError("budget is a duration such as 3m, 90s or 1m30s, or a number of seconds")
            return seconds
        return value

    @field_validator("setups", mode="before")
    @classmethod
    def _setup_shorthand(cls, value: Any) -> Any:
        # YAML shorthand: "- bare" or "- container: {network: host}".
        if not isinstance(value, list):
            return value
        items = []
        for item in value:
            if isinstance(item, str):
                items.append({"setup": item})
            elif isinstance(item, dict) and len(item) == 1 and "setup" not in item:
                (name, options), = item.items()
                items.append({"setup": name, "options": options if options is not None else {}})
            else:
                items.append(item)
        return items

    @field_validator("setups")
    @classmethod
    def _unique_setups(cls, value: list[SetupSpec]) -> list[SetupSpec]:
        # The same setup with the same options twice would write two records over one trial id
        # and one set of files, and count them as two repeats.
        repeated = list(dict.fromkeys(f"{mine.key} = {theirs.key}" if mine.key != theirs.key else mine.key
                                      for index, mine in enumerate(value) for theirs in value[index + 1:]
                                      if mine.same_variant(theirs)))
        if repeated:
            raise ValueError(f"each setup variant may appear once; repeated: {', '.join(repeated)} "
                             f"(for more samples, raise repeat)")
        return value

    @field_validator("workloads", mode="before")
    @classmethod
    def _workload_shorthand(cls, value: Any) -> Any:
        # "- hello" means the built-in hello workload.
        if not isinstance(value, list):
            return value
        return [BUILTIN_WORKLOADS[item].model_dump() if isinstance(item, str) and item in BUILTIN_WORKLOADS
                else item for item in value]

    @field_validator("repeat", mode="before")
    @classmethod
    def _repeat_range(cls, value):
        # One clear message instead of one per member of the int | "auto" union.
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000):
            return value
        raise ValueError("repeat must be a whole number from 1 to 1000, or auto")

    @model_validator(mode="after")
    def _unique_names(self) -> "Scenario":
        names = [workload.name for workload in self.workloads]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"workload names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _apps_serve_the_workloads(self) -> "Scenario":
        if self.app is not None and self.apps is not None:
            raise ValueError("give either app (one app) or apps (a list), not both")
        keys = [spec.key for spec in self.app_specs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"apps must be unique; repeated: {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}")
        for spec in self.app_specs:
            app = spec.build()
            for workload in self.workloads:
                if workload.kind == "load" and not app.serves(workload.endpoint or ""):
                    raise ValueError(f"workload {workload.name!r}: app {spec.key} does not serve endpoint "
                                     f"{workload.endpoint!r} (it serves: {', '.join(app.endpoints)})")
        return self

    @property
    def app_specs(self) -> list[AppSpec]:
        """Every app the scenario runs, in its order (python when it names none)."""
        return list(self.apps) if self.apps else [self.app or AppSpec()]
