"""Scenario files -> validated models, with one clear message per problem.

A scenario says which app (`app: python`, `nginx`, a user's `{image: NAME:TAG, ...}`, or several
with `apps: [python, nginx]`), what to run it in (setups and their variants), how hard
(workloads), how often (repeat) and in what order. Every message names the file, the field path and, where the YAML
gives one, the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from bench import gate, scenario_yaml
from bench.errors import ScenarioError, SetupError
from bench.scenario_apps import AppSpec
from bench.scenario_messages import messages as _messages
from bench.units import parse_duration_s, parse_fraction

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MIN_DURATION_S = 0.1  # the shortest measured window, for a scenario file and for bench run --duration alike

# endpoint -> (the python app's path, query parameter name or None); each app declares its own
# paths (bench.apps), this table is the default app's and names the parameters.
ENDPOINTS = {
    "hello": ("/hello", None),
    "cpu": ("/cpu", "n"),
    "mem": ("/mem", "mb"),
    "io": ("/io", "kb"),
    "json": ("/json", None),
    "static": ("/static.html", None),  # a static file (nginx)
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workload(_Strict):
    """One kind of work: HTTP load on an endpoint, a cold start, an idle footprint, or density
    (N copies side by side, idle, for memory per instance as N grows)."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["load", "startup", "idle", "density"] = "load"
    endpoint: Literal["hello", "cpu", "mem", "io", "json", "static"] | None = None
    param: int | None = Field(default=None, ge=1, le=10_000_000)
    mode: Literal["closed", "open"] = "closed"
    connections: int = Field(default=8, ge=1, le=1024)
    rate: float | None = Field(default=None, gt=0, le=1_000_000)  # requests/s, open loop only
    duration: float = Field(default=10.0, gt=0, le=3600)  # seconds measured
    warmup: float = Field(default=1.0, ge=0, le=600)  # seconds discarded before measuring
    load: Literal["builtin", "wrk"] = "builtin"
    instances: list[int] = Field(default=[1, 2, 4], min_length=1, max_length=8)  # density only
    _path: str | None = PrivateAttr(default=None)  # the request path an app gave (for_path)

    @field_validator("duration")
    @classmethod
    def _long_enough(cls, value: float) -> float:
        # gt=0 above words the message for zero and below; this is the shared floor above zero.
        if value < MIN_DURATION_S:
            raise ValueError(f"duration must be at least {MIN_DURATION_S} s, as for --duration")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Workload":
        if self.kind == "load" and self.endpoint is None:
            if self.name in ENDPOINTS:
                object.__setattr__(self, "endpoint", self.name)
            else:
                raise ValueError(f"a load workload needs an endpoint ({', '.join(ENDPOINTS)})")
        if any(count < 1 or count > 32 for count in self.instances):
            raise ValueError("instances must each be from 1 to 32")
        repeated = sorted({count for count in self.instances if self.instances.count(count) > 1})
        if repeated:  # two trials of one count would share one trial id and one set of files
            raise ValueError(f"instances must be different counts; repeated: {', '.join(map(str, repeated))} "
                             f"(for more samples, raise repeat)")
        if self.mode == "open" and self.rate is None:
            raise ValueError("mode 'open' needs a rate (requests per second)")
        if self.mode == "closed" and self.rate is not None:
            raise ValueError("rate applies to mode 'open' only")
        if self.param is not None and self.endpoint and ENDPOINTS[self.endpoint][1] is None:
            raise ValueError(f"endpoint {self.endpoint!r} takes no param")
        return self

    def for_path(self, path: str) -> "Workload":
        """This workload requesting `path`: the app's own path for its endpoint (bench.apps)."""
        copy = self.model_copy()
        copy._path = path
        return copy

    @property
    def url_path(self) -> str:
        """The request path with its query, e.g. /cpu?n=1000 (the python app's unless an app gave one)."""
        if self._path is not None:
            return self._path
        path, parameter = ENDPOINTS[self.endpoint or "hello"]
        if parameter and self.param is not None:
            return f"{path}?{parameter}={self.param}"
        return path


# The workloads `--workloads hello,cpu` names, and the defaults of `bench run` with no scenario.
BUILTIN_WORKLOADS = {
    "hello": Workload(name="hello", endpoint="hello"),
    "cpu": Workload(name="cpu", endpoint="cpu", param=1000),
    "mem": Workload(name="mem", endpoint="mem", param=16),
    "io": Workload(name="io", endpoint="io", param=64),
    "json": Workload(name="json", endpoint="json"),
    "static": Workload(name="static", endpoint="static"),  # a static file (nginx)
    "startup": Workload(name="startup", kind="startup"),
    "idle": Workload(name="idle", kind="idle", duration=3.0, warmup=0.0),
    "density": Workload(name="density", kind="density", duration=3.0, warmup=0.0),
}
DEFAULT_WORKLOADS = ("hello", "cpu")


class SetupSpec(_Strict):
    """A setup and its variant options (validated against that setup's Options)."""

    setup: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> "SetupSpec":
        from bench.setups import registry  # here, so importing this module loads no setup

        try:
            cls = registry.get(self.setup)
        except SetupError as error:
            raise ValueError(str(error)) from None
        cls.Options(**self.options)  # raises a ValidationError naming the bad option
        return self

    @property
    def key(self) -> str:
        return self.setup + ("[" + ",".join(f"{k}={v}" for k, v in sorted(self.options.items())) + "]"
                             if self.options else "")

    @property
    def folder_key(self) -> str:
        """The key made safe as a folder name (trial ids, files)."""
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.key)

    def same_variant(self, other: "SetupSpec") -> bool:
        """True when both run the same thing: options equal once defaults are filled in
        (`container` and `container: {network: bridge}`), or their files would collide."""
        if self.folder_key == other.folder_key:
            return True
        if self.setup != other.setup:
            return False
        from bench.setups import registry

        options = registry.get(self.setup).Options
        return options(**self.options) == options(**other.options)


class PinningSpec(_Strict):
    app_cpus: list[Annotated[int, Field(ge=0, le=4095)]] = Field(min_length=1, max_length=4096)
    load_cpus: list[Annotated[int, Field(ge=0, le=4095)]] = Field(min_length=1, max_length=4096)


class Scenario(_Strict):
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


def parse_scenario(text: str, source: str = "<scenario>", overrides: dict | None = None) -> Scenario:
    """Validate scenario YAML text; ScenarioError with one line per problem."""
    data, root = scenario_yaml.load(text, source)  # bounded: size, aliases, depth; no duplicate keys
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1: a scenario is a mapping with name, setups, workloads, ..."])
    data.update(overrides or {})
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_messages(error, source, scenario_yaml.line_index(root))) from None


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
    return parse_scenario(scenario_yaml.read_text(path), str(path), overrides)


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
        raise ScenarioError(_messages(error, "command line", {})) from None
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
        raise ScenarioError(_messages(error, "command line", {})) from None


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
        raise ScenarioError(_messages(error, "--app", {})) from None


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
        raise ScenarioError(_messages(error, "command line", {})) from None

