"""compare.html: the comparison of stored runs as a page, with its chart (bench.compare computes it)."""

from __future__ import annotations

from pathlib import Path

from bench.atomic import atomic_write
from bench.compare import Comparison
from bench.outputs.plots.compare import compare_chart
from bench.outputs.report import embed_png, environment
from bench.outputs.rows import compare_rows

COMPARE_FILE = "compare.html"
CHART_NAME = "compare"


def write_compare_report(comparison: Comparison, out_dir: Path) -> Path:
    """Write `out_dir`/compare.png|svg (ratios to the first run) and `out_dir`/compare.html; the page's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = compare_chart(comparison, out_dir, CHART_NAME)
    html = environment().get_template("compare.html").render(
        comparison=comparison.as_dict(), rows=compare_rows(comparison), chart=embed_png(chart[0]) if chart else None)
    path = out_dir / COMPARE_FILE
    atomic_write(path, html.encode("utf-8"))
    path.chmod(0o644)
    return path
