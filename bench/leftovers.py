"""Find and remove what killed runs left behind, through each setup's own hooks."""

from __future__ import annotations

from pathlib import Path

from bench.errors import LayerbenchError, ResultsError
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
    """Remove leftovers (only one run's, where a setup can tell runs apart), then the temp folders of
    runs and probes whose process is gone (bench.scratch; not with run_id: they name a pid, not a
    run), and with `caches` the artefacts built from older inputs; one line per thing removed."""
    from bench import scratch

    removed = []
    for cls in registry.classes():
        removed += cls.clean_leftovers(run_id)
        if caches:
            removed += cls.prune_caches()
    return removed + (scratch.clean_stale() if run_id is None else [])


def refuse_live_run(run_id: str, results_dir: Path) -> None:
    """LayerbenchError when the run is still going (its runner holds the run's lock). A run
    folder that is not found is no obstacle: each setup spares what a live runner owns anyway."""
    from bench.results import load_run, resolve_run
    from bench.runlock import live_writer

    try:
        run_dir = resolve_run(run_id, results_dir)
        pid = live_writer(run_dir, load_run(run_dir).runner_pid)
    except ResultsError:
        return
    if pid is not None:
        who = f"runner pid {pid}" if pid else "another runner"
        raise LayerbenchError(f"run {run_dir.name} is still going ({who}); nothing cleaned: stop it first, "
                              f"or wait for it to end")
