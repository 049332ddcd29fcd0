"""Measurement check, run by a developer: what would an HDR-style log histogram save over the raw
latency arrays, and what would it cost in precision? Measured on real trials: a fresh 60 s bare
/hello trial, or the trials of run folders given on the command line.

    .venv/bin/python -m tools.latency_storage_check [RUN_DIR ...] [--duration 60] [--precision 0.01]

For each trial: requests, the bytes of latency_ms.npy + app_ms.npy, the bytes of both as log
histograms (bins `precision` wide in relative terms, nonzero bins only, compressed npz), and the
largest relative error of p50/p90/p99/p99.9 read back from the histogram (bin midpoints).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import results, trial_files
from bench.runner import run_scenario
from bench.scenario import from_flags
from bench.stats import PERCENTILES

FLOOR_MS = 0.001  # 1 µs: the smallest latency a bin distinguishes


def histogram(values: np.ndarray, precision: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin index, count) of the nonzero bins of a log histogram with bins `precision` wide."""
    index = np.floor(np.log(np.maximum(values, FLOOR_MS) / FLOOR_MS) / np.log1p(precision)).astype(np.int32)
    bins, counts = np.unique(index, return_counts=True)
    return bins, counts.astype(np.uint32)


def stored_bytes(**arrays: np.ndarray) -> int:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.tell()


def worst_error(values: np.ndarray, bins: np.ndarray, counts: np.ndarray, precision: float) -> float:
    """Largest relative error of the percentiles read back from the histogram."""
    mids = FLOOR_MS * (1 + precision) ** (bins + 0.5)
    cumulative = np.cumsum(counts) / counts.sum()
    worst = 0.0
    for quantile in (q / 100 for name, q in PERCENTILES.items() if name != "max"):
        exact = float(np.quantile(values, quantile, method="inverted_cdf"))  # a rank, as the histogram gives
        approx = float(mids[np.searchsorted(cumulative, quantile)])
        worst = max(worst, abs(approx - exact) / exact)
    return worst


def check(run_dir: Path, precision: float) -> None:
    for trial in results.load_run(run_dir).ok_trials():
        files = trial.files.named()
        if "latency_ms" not in files:
            continue
        raw = sum((run_dir / files[name]).stat().st_size for name in ("latency_ms", "app_ms") if name in files)
        latency = trial_files.read_array(run_dir, files["latency_ms"])
        app = trial_files.read_array(run_dir, files["app_ms"]) if "app_ms" in files else latency
        app = app[np.isfinite(app)]
        parts = {}
        for name, values in (("latency", latency), ("app", app)):
            parts[f"{name}_bins"], parts[f"{name}_counts"] = histogram(values, precision)
        packed = stored_bytes(**parts)
        error = worst_error(latency, parts["latency_bins"], parts["latency_counts"], precision)
        rate = (trial.load.throughput_rps if trial.load else 0) or 0
        print(f"{trial.trial_id}: {latency.size:,} requests ({rate:,.0f} req/s); "
              f"raw {raw:,} B ({raw / max(latency.size, 1):.1f} B/request); histograms {packed:,} B "
              f"({len(parts['latency_bins'])} + {len(parts['app_bins'])} bins); {raw / packed:,.0f}x smaller; "
              f"worst percentile error {error:.2%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--precision", type=float, default=0.01)
    args = parser.parse_args(argv)
    if args.runs:
        for run_dir in args.runs:
            check(run_dir, args.precision)
        return 0
    with tempfile.TemporaryDirectory(prefix="layerbench-storage-") as folder:
        scenario = from_flags(["bare"], ["hello"], duration=args.duration, warmup=1.0, repeat=1)
        check(run_scenario(scenario, Path(folder)), args.precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
