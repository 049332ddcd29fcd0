"""The HTML report of a run: one self-contained file (charts embedded), from stored results only.

Every figure in it comes from the run's model (bench.model.Run); the words about each layer are
the ones the run stored for it. Autoescaping is on for everything: scenario names and
descriptions come from user files.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from bench.model import Run
from bench.outputs.plots import CHARTS, CHARTS_DIR, render_run
from bench.outputs.report.context import report_context
from bench.atomic import atomic_write

REPORT_FILE = "report.html"
TEMPLATES = Path(__file__).parent / "templates"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


@dataclass(frozen=True)
class EmbeddedChart:
    """A chart in the page: its name (bench.outputs.plots.CHARTS), caption and image as a data: URI."""

    name: str
    caption: str
    src: str


def embed_png(path: Path) -> str:
    """A data: URI for a PNG, so the report is one file that can be mailed or projected offline."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_report(run: Run, charts: dict[str, list[Path]]) -> str:
    """The report's HTML text for a run whose charts are already drawn."""
    embedded = [EmbeddedChart(name, CHARTS[name][1], embed_png(paths[0]))
                for name, paths in charts.items() if paths and paths[0].suffix == ".png"]
    return environment().get_template("report.html").render(**report_context(run, embedded))


def write_report(run_dir: Path) -> Path:
    """Draw the charts into `<run_dir>/charts/` and write `<run_dir>/report.html`; returns its path."""
    return write_run_report(Run.load(Path(run_dir)))


def write_run_report(run: Run) -> Path:
    """The report of a loaded run (its caveats then include files the charts could not read).

    All or nothing: charts are drawn into a temp folder beside `charts/` and replace it only once
    the page is written, so a full disk leaves the previous charts and report, not half of each.
    """
    staging = Path(tempfile.mkdtemp(prefix=".charts-", dir=run.run_dir))
    try:
        charts = render_run(run, staging)
        path = run.run_dir / REPORT_FILE
        atomic_write(path, render_report(run, charts).encode("utf-8"))  # charts are embedded: no links to fix
        path.chmod(0o644)  # a report is for sharing; the temp file it came from was private
        _replace_dir(staging, run.run_dir / CHARTS_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _replace_dir(new: Path, target: Path) -> None:
    """Put folder `new` in the place of `target` with renames only (they need no free space)."""
    new.chmod(0o755)  # mkdtemp made it private; charts are for sharing
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
