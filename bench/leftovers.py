"""Find and remove what killed runs left behind, through each setup module's own hooks.

A setup module may define `find_leftovers() -> list[str]` (cheap: `bench run` calls it to warn)
and `clean_leftovers(...) -> list[str]` (`bench clean` calls it). Both are optional.
"""

from __future__ import annotations

import inspect
import sys

from bench import setups


def _modules():
    for name in setups.names():
        yield sys.modules[setups.get(name).__module__]


def find() -> list[str]:
    """One line per leftover (container, VM, app process) that some earlier run left running."""
    found = []
    for module in _modules():
        finder = getattr(module, "find_leftovers", None)
        if finder is None:
            continue
        try:
            found += finder()
        except Exception:  # a warning helper must never stop a run
            continue
    return found


def clean(run_id: str | None = None) -> list[str]:
    """Remove leftovers (only one run's, where a setup can tell runs apart); what was removed."""
    removed = []
    for module in _modules():
        cleaner = getattr(module, "clean_leftovers", None)
        if cleaner is None:
            continue
        accepts_run = "run_id" in inspect.signature(cleaner).parameters
        removed += cleaner(run_id=run_id) if accepts_run and run_id else cleaner()
    return removed
