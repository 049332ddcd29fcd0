"""Durations and percentages as people write them ("3m", "1m30s", "5%"), for scenario files and flags."""

from __future__ import annotations

import re

_DURATION = re.compile(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*")


def parse_duration_s(text: str) -> float | None:
    """Seconds in "3m", "90s", "1m30s", "2h" or "45" (seconds); None when it is not such a duration."""
    found = _DURATION.fullmatch(text)
    if not found or not any(found.groups()):
        return None
    hours, minutes, seconds = (float(part) if part else 0.0 for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_fraction(text: str) -> float | None:
    """0.05 from "5%" or "0.05"; None when it is neither."""
    text = text.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None
