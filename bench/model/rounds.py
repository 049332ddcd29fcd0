"""A cell's trials grouped the ways its intervals need: by round (the unit every interval rests on:
trials that shared a start are not independent replicas), by start, and per unit of machine speed."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import numpy as np

from bench.vocabulary import finite

Read = Callable[[object], float | None]  # a metric's reader: a trial -> its figure, or None


def combine(values: list[float]) -> float:
    """Several trials of one round as one value: their geometric mean (their mean for a figure that
    is not positive)."""
    if len(values) == 1:
        return values[0]
    if all(value > 0 for value in values):
        return float(np.exp(np.mean(np.log(values))))
    return float(np.mean(values))


def epoch_s(iso: str) -> float | None:
    """Epoch seconds of a stored ISO time, None when there is none."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


def per_round(trials: list, read: Read) -> dict[int, float]:
    """One value per round: the round's trials (one start, or back-to-back trials of one start)
    combined by their geometric mean."""
    by_round: dict[int, list[float]] = {}
    for trial in trials:
        value = read(trial)
        if finite(value):
            by_round.setdefault(trial.repeat, []).append(value)
    return {repeat: combine(values) for repeat, values in sorted(by_round.items())}


def calibrated_per_round(trials: list, metric) -> dict[int, float]:
    """per_round() of each trial's figure per unit of the machine speed measured beside it (a figure
    where higher is better divided by the speed, one where lower is better multiplied): what the
    machine's speed explains cancels. Trials without a speed are left out."""
    by_round: dict[int, list[float]] = {}
    for trial in trials:
        value, speed = metric.of(trial), trial.speed.hashes_per_s if trial.speed else None
        if finite(value) and finite(speed) and speed > 0:
            calibrated = value / speed * 1e6 if metric.higher_is_better else value * speed / 1e6
            by_round.setdefault(trial.repeat, []).append(calibrated)
    return {repeat: combine(values) for repeat, values in sorted(by_round.items())}


def round_start_times(trials: list) -> dict[int, float]:
    """When each round began (epoch seconds of its first trial): pairs a round with the baseline's
    nearest one when the baseline lacks it."""
    times: dict[int, float] = {}
    for trial in trials:
        when = epoch_s(trial.started_at)
        if when is not None:
            times[trial.repeat] = min(times.get(trial.repeat, when), when)
    return times


def per_start(trials: list, read: Read) -> list[list[float]]:
    """The values grouped by the start they ran on, each group in the order it ran."""
    groups: dict[str, list[float]] = {}
    for trial in trials:
        value = read(trial)
        if finite(value):
            groups.setdefault(trial.start_id or f"r{trial.repeat}", []).append(value)
    return list(groups.values())
