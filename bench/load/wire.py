"""A load generator's spec and result as JSON: how `bench load --json` on a split run's load host
answers the runner on the target host, over ssh's stdout (and, relayed, its stdin).

Latencies travel as the bytes of a float64 array (zlib, base64): every latency is kept, as in a
local run. The measured window is in the sender's time.monotonic() clock; the receiver moves it
into its own with the sender's clock reading at the moment of sending (`clock_now`), so the error
is the one-way delay of the line (milliseconds on a LAN), not the two clocks' difference.
"""

from __future__ import annotations

import base64
import dataclasses
import time
import zlib

import numpy as np

from bench.load.spec import LoadResult, LoadSpec

_SPEC_FIELDS = {field.name: field.type for field in dataclasses.fields(LoadSpec)}


def spec_to_dict(spec: LoadSpec) -> dict:
    return dataclasses.asdict(spec)


def spec_from_dict(data: object) -> LoadSpec:
    """A LoadSpec from JSON data; ValueError naming the first field that does not fit."""
    if not isinstance(data, dict):
        raise ValueError("a load spec is a JSON object")
    unknown = sorted(set(data) - set(_SPEC_FIELDS))
    if unknown:
        raise ValueError(f"unknown load spec field {unknown[0]!r}")
    for name in ("path", "mode", "host"):
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"load spec field {name!r} must be text")
    for name in ("connections", "duration_s", "warmup_s", "timeout_s"):
        if name in data and (isinstance(data[name], bool) or not isinstance(data[name], (int, float))):
            raise ValueError(f"load spec field {name!r} must be a number")
    spec = LoadSpec(**data)
    spec.process_count()  # refuses a bad `processes`
    return spec


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.asarray(values, dtype=np.float64).tobytes(), 1)).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.float64).copy()


def result_to_dict(result: LoadResult) -> dict:
    """Plain data for one JSON line; `clock_now` is this machine's monotonic clock right now."""
    return {"requests": result.requests, "errors": result.errors, "duration_s": result.duration_s,
            "window": list(result.window), "sent": result.sent, "generator": result.generator,
            "notes": result.notes, "generator_processes": result.generator_processes,
            "generator_cpu_s": result.generator_cpu_s, "generator_wait_s": result.generator_wait_s,
            "generator_busy_fraction": result.generator_busy_fraction,
            "latency_ms": _pack(result.latency_ms), "app_ms": _pack(result.app_ms), "clock_now": time.monotonic()}


def result_from_dict(data: dict, received_at: float | None = None) -> LoadResult:
    """The LoadResult a sender encoded, its window moved into this machine's monotonic clock."""
    received_at = time.monotonic() if received_at is None else received_at
    offset_s = received_at - float(data["clock_now"])
    start, end = (float(value) + offset_s for value in data["window"])
    notes = dict(data.get("notes") or {})
    notes["window_clock"] = "the load host's, moved into the target's by one JSON line's arrival"
    return LoadResult(requests=int(data["requests"]), errors=dict(data["errors"]), duration_s=float(data["duration_s"]),
                      latency_ms=_unpack(data["latency_ms"]), app_ms=_unpack(data["app_ms"]), window=(start, end),
                      sent=int(data.get("sent", 0)), generator=str(data.get("generator", "builtin")), notes=notes,
                      generator_processes=int(data.get("generator_processes", 1)),
                      generator_cpu_s=data.get("generator_cpu_s"), generator_wait_s=data.get("generator_wait_s"),
                      generator_busy_fraction=data.get("generator_busy_fraction"))
