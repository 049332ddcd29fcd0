"""Measurement check, run by a developer: does a layer's throughput ratio to the baseline depend on
the load generator? Reads a stored run in which the same starts were driven by both generators (the
`gvisor-check` scenario), pools each setup variant's load trials by the generator that drove them,
and prints, per generator, the ratio of medians (variant / baseline) with its 95% interval, then
built-in ratio / wrk ratio.

    .venv/bin/python -m tools.ratio_check RUN [--tolerance 0.15]

Exit 1 when a variant's two ratios are further apart than the tolerance (0.15: within 15%).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench import stats
from bench.model import Run
from bench.results import load_run, resolve_run

SEED = 16


def pooled(run: Run) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(setup, variant): {generator: [throughput of every ok load trial it drove]}}."""
    found: dict[tuple[str, str], dict[str, list[float]]] = {}
    for trial in load_run(run.run_dir).ok_trials():
        if trial.load and trial.load.throughput_rps:
            found.setdefault((trial.setup, trial.variant), {}).setdefault(trial.load.generator or "?", []).append(
                trial.load.throughput_rps)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--tolerance", type=float, default=0.15)
    args = parser.parse_args(argv)
    run = Run.load(resolve_run(args.run, Path("results")))
    groups = pooled(run)
    base = next((values for (setup, _), values in groups.items() if setup == run.baseline), None)
    if base is None or len(base) < 2:
        print("the run needs the baseline driven by two generators (scenario gvisor-check)")
        return 2
    worst = 0.0
    for key, values in groups.items():
        if key[0] == run.baseline:
            continue
        ratios = {}
        for generator in sorted(set(values) & set(base)):
            ratio = stats.ratio_ci(values[generator], base[generator], SEED)
            ratios[generator] = ratio.median
            print(f"{key[0]} ({key[1]}) / {run.baseline}, {generator}: {ratio.median:.3f} [{ratio.low:.3f}-"
                  f"{ratio.high:.3f}] (medians {np.median(values[generator]):,.0f} / {np.median(base[generator]):,.0f}"
                  f" req/s, n={len(values[generator])})")
        if {"builtin", "wrk"} <= set(ratios):
            quotient = ratios["builtin"] / ratios["wrk"]
            worst = max(worst, abs(quotient - 1))
            print(f"  built-in ratio / wrk ratio = {quotient:.3f}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
