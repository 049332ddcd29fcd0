"""Find and remove what killed runs left behind, through each setup's own hooks."""

from __future__ import annotations

from bench.setups import registry


def find() -> list[str]:
    """One line per leftover (container, VM, app process) that some earlier run left running."""
    found = []
    for cls in registry.classes():
        try:
            found += cls.find_leftovers()
        except Exception:  # a warning helper must never stop a run
            continue
    return found


def clean(run_id: str | None = None, caches: bool = False) -> list[str]:
    """Remove leftovers (only one run's, where a setup can tell runs apart), and with `caches`
    the artefacts built from older inputs; one line per thing removed."""
    removed = []
    for cls in registry.classes():
        removed += cls.clean_leftovers(run_id)
        if caches:
            removed += cls.prune_caches()
    return removed
