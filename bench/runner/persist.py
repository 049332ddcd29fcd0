"""Storing a run as it goes: each measurement's raw files next to run.json, rewritten atomically
after every trial so a crash keeps what was measured."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.metrics.sampler import HOST_COLUMNS, PROCESS_COLUMNS
from bench.results import RunRecord, TrialRecord, save_run
from bench.trial_files import write_array, write_csv
from bench.runner.measure import Measurement


def store_measurement(run_dir: Path, measurement: Measurement) -> TrialRecord:
    """Write a measurement's raw data under trials/<trial id>/; its record, with `files` filled in.
    On a full disk the trial's partial files go again before the error is raised, so that the
    failed trial's record (and every trial before it) can still be saved in run.json."""
    record = measurement.record
    folder = f"trials/{record.trial_id}"
    try:
        if measurement.process_rows or measurement.host_rows:
            record.files.processes = write_csv(run_dir, f"{folder}/processes.csv", PROCESS_COLUMNS,
                                               measurement.process_rows)
            record.files.host = write_csv(run_dir, f"{folder}/host.csv", HOST_COLUMNS, measurement.host_rows)
        if measurement.latency_ms is not None:
            record.files.latency_ms = write_array(run_dir, f"{folder}/latency_ms.npy", measurement.latency_ms)
        if measurement.app_ms is not None:
            record.files.app_ms = write_array(run_dir, f"{folder}/app_ms.npy", measurement.app_ms)
    except OSError:
        shutil.rmtree(run_dir / folder, ignore_errors=True)
        raise
    return record


def append_trial(run_dir: Path, run: RunRecord, record: TrialRecord, key: str) -> None:
    """Add a finished (or failed) trial to the run and save run.json."""
    run.trials.append(record)
    run.order.append(key)
    save_run(run_dir, run)
