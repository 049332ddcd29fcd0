"""Progress events as JSON objects: how a fleet host's worker tells the control host what its
runner does (bench.fleet.worker writes them, bench.fleet.hostrun reads them).

One object per event: its kind's name, then its fields by name; paths as strings, the records
as the stored format writes them. A kind or a field this version does not know (a newer host) is
no error: the event comes back as a HostLog with its message, or not at all when it has none.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path

from bench.events import EVENT_CLASSES, Event, HostLog, PlannedStart, PlannedWork
from bench.results import RunRecord, TrialRecord

# What each plain field may hold in JSON (bool is an int to Python: told apart below).
_PLAIN = {str: (str,), int: (int,), float: (int, float), bool: (bool,), type(None): (type(None),)}


def to_json(event: Event) -> dict:
    """The event as a JSON object (a dict json.dumps takes); event_from_json reads it back."""
    return {"kind": event.kind, **{field.name: _encode(getattr(event, field.name))
                                   for field in dataclasses.fields(event)}}


def event_from_json(data: object) -> Event | None:
    """The event a JSON object describes. One of an unknown kind, or whose fields do not fit, comes
    back as a HostLog with its message (None when it has none: nothing to show)."""
    if not isinstance(data, dict):
        return None
    cls = EVENT_CLASSES.get(str(data.get("kind")))
    if cls is not None:
        try:
            hints = _hints(cls)
            return cls(**{name: _decode(hints[name], data[name]) for name in _fields(cls) if name in data})
        except (TypeError, ValueError, KeyError):  # a field missing or ill-typed (pydantic's: ValueErrors)
            pass
    message = data.get("message")
    return HostLog(message) if isinstance(message, str) and message else None


def _encode(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (RunRecord, TrialRecord)):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):  # the plan's starts
        return [dataclasses.asdict(item) for item in value]
    return value


def _decode(hint, value):
    special = _SPECIAL.get(hint)
    if special is not None:
        return None if value is None and type(None) in typing.get_args(hint) else special(value)
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        allowed = _PLAIN.get(option, ())
        if isinstance(value, allowed) and not (isinstance(value, bool) and option is not bool):
            return float(value) if option is float else value
    raise ValueError(f"{value!r} is not a {hint}")


def _starts(value) -> tuple[PlannedStart, ...]:
    if not isinstance(value, list):
        raise ValueError("the plan's starts are not a list")
    return tuple(PlannedStart(**{**start, "trials": tuple(PlannedWork(**work) for work in start["trials"])})
                 for start in value)


_SPECIAL = {Path: lambda value: Path(_decode(str, value)),
            RunRecord | None: RunRecord.model_validate, TrialRecord | None: TrialRecord.model_validate,
            tuple[PlannedStart, ...]: _starts}


@functools.cache
def _hints(cls: type[Event]) -> dict:
    return typing.get_type_hints(cls, localns={"RunRecord": RunRecord, "TrialRecord": TrialRecord})


@functools.cache
def _fields(cls: type[Event]) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))
