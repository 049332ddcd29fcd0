"""A fleet's report: one self-contained report.html with the machines side by side, every cell's
headline figures per host (with their intervals and the ratio to the first host), the warnings,
the comparison chart, and a link to each host's own full report."""

from __future__ import annotations

from pathlib import Path

from bench.fleet.model import Fleet
from bench.atomic import atomic_write
from bench.outputs.rows import fleet_rows

REPORT_FILE = "report.html"
CHART_NAME = "fleet"


def fleet_context(fleet: Fleet, chart: str | None) -> dict:
    return {
        "fleet_id": fleet.fleet_id, "status": fleet.status, "scenario": fleet.scenario_name or "–",
        "description": fleet.description, "created_at": fleet.created_at,
        "finished_at": fleet.finished_at or "not finished", "command_line": " ".join(fleet.command_line) or "–",
        "hosts": [outcome.name for outcome in fleet.hosts], "machines": fleet.machines(),
        "measured_hosts": list(fleet.runs), "rows": fleet_rows(fleet),
        "warnings": [caveat.text for caveat in fleet.caveats()], "chart": chart,
        "reports": [(name, f"{name}/{REPORT_FILE}") for name in fleet.runs
                    if (fleet.fleet_dir / name / REPORT_FILE).exists()],
        "split": fleet.split,
    }


def write_fleet_report(fleet_dir: Path, host_reports: bool = True) -> Path:
    """Write each host's own report, the comparison chart and `<fleet_dir>/report.html`; its path."""
    from bench.outputs.plots.compare import compare_chart
    from bench.outputs.report import embed_png, environment, write_report

    fleet = Fleet.load(fleet_dir)
    if host_reports:
        for run in fleet.runs.values():
            write_report(run.run_dir)
    chart = None
    if fleet.comparison is not None:
        drawn = compare_chart(fleet.comparison, fleet.fleet_dir / "charts", CHART_NAME)
        chart = embed_png(drawn[0]) if drawn else None
    html = environment().get_template("fleet.html").render(**fleet_context(fleet, chart))
    path = fleet.fleet_dir / REPORT_FILE
    atomic_write(path, html.encode("utf-8"))
    path.chmod(0o644)
    return path
