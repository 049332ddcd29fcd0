"""Charts from stored results only: one function per chart, each writing PNG and SVG.

Every chart function takes a `bench.model.Run` (the stored run) and an output folder,
and returns the paths it wrote, or [] when the run holds no data for it (nothing is drawn empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from bench.model import Run
from bench.outputs.plots.by_app import by_app
from bench.outputs.plots.cost import cpu_per_request, memory_layers
from bench.outputs.plots.density import density
from bench.outputs.plots.journey import journey
from bench.outputs.plots.load import latency_cdf, latency_percentiles, throughput
from bench.outputs.plots.overhead import headline
from bench.outputs.plots.stack import layer_stack
from bench.outputs.plots.startup import startup_distribution, startup_phases
from bench.outputs.plots.timeseries import timeseries
from bench.outputs.plots.workers import draw_charts

CHARTS_DIR = "charts"

# Name (also the file stem) -> (chart function, a caption for the report). Order = report order.
CHARTS: dict[str, tuple[Callable[[Run, Path], list[Path]], str]] = {
    "headline": (headline, "Overhead of each layer relative to the baseline setup"),
    "layer_stack": (layer_stack, "The layers each setup stacks between the app and the hardware, with what "
                                 "each measured"),
    "journey": (journey, "The journey of one request: where its latency goes at each hop, with the packets and "
                         "bytes each interface on the way carried per request"),
    "by_app": (by_app, "The same layer under each app, against that app's own baseline"),
    "throughput": (throughput, "Throughput per setup and workload"),
    "latency_percentiles": (latency_percentiles, "Latency percentiles"),
    "latency_cdf": (latency_cdf, "Latency distribution from every request"),
    "cpu_per_request": (cpu_per_request, "CPU per request by role"),
    "memory_layers": (memory_layers, "Memory by layer (the layer cake), PSS"),
    "density": (density, "Memory per instance as copies are added (density)"),
    "startup_phases": (startup_phases, "Start-up phases"),
    "startup_distribution": (startup_distribution, "Start-up time of every fresh start"),
    "timeseries": (timeseries, "CPU and memory over time"),
}

__all__ = ["CHARTS", "CHARTS_DIR", "render_all", "render_run", *CHARTS]


def render_run(run: Run, out_dir: Path) -> dict[str, list[Path]]:
    """Draw every chart that has data into out_dir (in worker processes where there are several
    CPUs: bench.outputs.plots.workers); name -> paths written. A chart without data is skipped and
    any stale file of it from an earlier render is removed."""
    written: dict[str, list[Path]] = {}
    drawn = draw_charts(run, out_dir, {name: chart for name, (chart, _) in CHARTS.items()})
    for name, paths in drawn.items():
        if paths:
            written[name] = paths
        else:
            for suffix in (".png", ".svg"):
                (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    return written


def render_all(run_dir: Path) -> list[Path]:
    """Write every chart with data into `<run_dir>/charts/` (PNG and SVG); the paths written."""
    run_dir = Path(run_dir)
    written = render_run(Run.load(run_dir), run_dir / CHARTS_DIR)
    return [path for paths in written.values() for path in paths]
