"""A workload: what is asked of the app (HTTP load on an endpoint, a cold start, an idle footprint,
density), and the built-in workloads that `--workloads hello,cpu` names."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from bench.scenario.strict import NAME_PATTERN, Strict

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


class Workload(Strict):
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
