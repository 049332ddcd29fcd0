"""A run's warnings grouped: one line per kind of doubt, naming the cells it touches and how far it
goes, ordered by how much it threatens a verdict. A busy run's report opened with a warning per
cell and kind (25 of them); a reader needs to know which doubts there are, where, and how bad.

The per-cell caveats (bench.model.caveats) stay as they are: the tables' flags and the JSON keep
them; this module only groups them for the lines a reader reads first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.vocabulary import Caveat

# How much a kind of doubt threatens a verdict, most first. A kind not listed comes after these.
THREAT = ("incomplete", "failed", "unreadable", "stall", "errors", "busy", "starts_differ", "warming",
          "generator_bound", "noisy", "discarded", "memory_mismatch", "split", "skipped", "layer", "no_baseline",
          "single_repeat")
SHOWN_SUBJECTS = 4  # cells named in a line before "and N more"

_HEADS = {
    "busy": "busy machine",
    "stall": "stalls (no request completed for a second or more)",
    "errors": "request errors",
    "generator_bound": "generator-bound cells (the load generator at its limit: the client may have set the pace)",
    "noisy": "noisy cells (rounds spread more than 10%)",
    "starts_differ": "starts differ far more than trials within a start",
    "warming": "figures move within a start (warming up or slowing down)",
    "discarded": "rounds measured again",
    "memory_mismatch": "memory cross-check off",
    "single_repeat": "one round only (no interval)",
    "failed": "failed trials",
}


@dataclass(frozen=True)
class Doubt:
    """One kind of doubt over a run: its line, the cells (or layers) it touches, its rank."""

    kind: str
    text: str
    subjects: tuple[str, ...]
    severity: str = "warning"

    @property
    def rank(self) -> int:
        return THREAT.index(self.kind) if self.kind in THREAT else len(THREAT)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "subjects": list(self.subjects), "severity": self.severity}


def _named(subjects: list[str]) -> str:
    shown = ", ".join(subjects[:SHOWN_SUBJECTS])
    return shown + (f" and {len(subjects) - SHOWN_SUBJECTS} more" if len(subjects) > SHOWN_SUBJECTS else "")


def _extent(kind: str, caveats: list[Caveat], run) -> str:
    """How far a kind of doubt goes, from the flags of its cells."""
    if kind == "busy":
        trials = sum(int(found.group(1)) for c in caveats if (found := re.search(r"in (\d+) trial", c.flag)))
        cores = max(float(found.group(1)) for c in caveats if (found := re.search(r"up to ([\d.]+) cores", c.flag)))
        measured = sum(cell.repeats for cell in run.cells)
        return f"in {trials} of {measured} trials others used up to {cores:.2f} cores"
    if kind in ("noisy", "starts_differ", "memory_mismatch"):
        percents = [int(found) for c in caveats for found in re.findall(r"(\d+)%", c.flag)[:1]]
        return f"up to {max(percents)}%" if percents else ""
    if kind == "failed":
        reason = caveats[0].text.split(": ", 1)[-1]
        return f"{len(caveats)} trial(s); the first: {reason[:160]}"
    if kind in ("stall", "generator_bound", "discarded"):
        counts = [int(found.group(1)) for c in caveats if (found := re.search(r"(\d+) (?:trial|failed|measured)",
                                                                                c.flag or c.text))]
        return f"{sum(counts)} trial(s)" if counts else ""
    if kind == "warming":
        return caveats[0].flag
    return ""


def group(caveats: list[Caveat], run) -> list[Doubt]:
    """The caveats of a run as one Doubt per kind (the cell-level kinds grouped; run-level ones, which
    each say something different, one each), most threatening first."""
    by_kind: dict[str, list[Caveat]] = {}
    for caveat in caveats:
        by_kind.setdefault(caveat.kind, []).append(caveat)
    doubts = []
    for kind, found in by_kind.items():
        if kind not in _HEADS:
            doubts += [Doubt(kind, c.text, (c.subject,) if c.subject else (), c.severity) for c in found]
            continue
        cells = found
        subjects = list(dict.fromkeys(c.subject for c in cells))
        extent = _extent(kind, cells, run)
        text = f"{_HEADS[kind].capitalize()} in {len(subjects)} cell(s)" + (f", {extent}" if extent else "") + \
               f": {_named(subjects)}"
        doubts.append(Doubt(kind, text, tuple(subjects), cells[0].severity))
    return sorted(doubts, key=lambda doubt: (doubt.severity != "warning", doubt.rank, -len(doubt.subjects)))
