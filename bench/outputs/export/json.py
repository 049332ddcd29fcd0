"""JSON: a run as the `show --format json` contract (bench.outputs.summary), a comparison as
Comparison.as_dict(). NaN and infinities become null: they are not JSON."""

from __future__ import annotations

import json
import math

from bench.outputs.summary import summarize


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _dumps(data) -> str:
    return json.dumps(_finite(data), indent=1, default=str, allow_nan=False) + "\n"


def run_text(run) -> str:
    """The run's summary (summary_version, results, overhead, caveats)."""
    return _dumps(summarize(run))


def comparison_text(comparison) -> str:
    """The comparison as plain data: runs, baseline_run, rows with each run's median and ratio, warnings."""
    return _dumps(comparison.as_dict())
