"""A fleet's report: one self-contained report.html with the machines side by side, every cell's
headline figures per host (with their intervals and the ratio to the first host), the warnings,
the comparison chart, and a link to each host's own full report."""

from __future__ import annotations

from pathlib import Path

from bench.fleet.model import Fleet
from bench.atomic import atomic_write
from bench.figures import HEADLINE_METRICS, metric
from bench.vocabulary import fmt, fmt_interval

REPORT_FILE = "report.html"
CHART_NAME = "fleet"


def side_by_side(fleet: Fleet) -> list[dict]:
    """One row per cell and headline metric: each host's median [interval], and its ratio to the first."""
    hosts = list(fleet.runs)
    rows = []
    if fleet.comparison is not None:
        for row in fleet.comparison.rows:
            if row.metric not in HEADLINE_METRICS:
                continue
            values = []
            for host, entry in zip(hosts, row.entries):
                cell = fleet.runs[host].cell(row.setup, row.variant, row.workload)
                estimate = cell.estimate(row.metric) if cell else None
                values.append({"value": fmt_interval(estimate) if estimate else fmt(entry.median),
                               "ratio": fmt_interval(entry.ratio, 2) if entry.ratio else "",
                               "verdict": entry.verdict or ""})
            rows.append({"label": row.label, "workload": row.workload, "metric": metric(row.metric).title,
                         "values": values, "changed": row.changed})
        return rows
    for host, run in fleet.runs.items():  # one host came home: its own figures, nothing to compare
        for cell in run.cells:
            for key in HEADLINE_METRICS:
                estimate = cell.estimate(key)
                if estimate is not None:
                    rows.append({"label": cell.label, "workload": cell.workload, "metric": metric(key).title,
                                 "values": [{"value": fmt_interval(estimate), "ratio": "", "verdict": ""}],
                                 "changed": False})
    return rows


def fleet_context(fleet: Fleet, chart: str | None) -> dict:
    return {
        "fleet_id": fleet.fleet_id, "status": fleet.status, "scenario": fleet.scenario_name or "–",
        "description": fleet.description, "created_at": fleet.created_at,
        "finished_at": fleet.finished_at or "not finished", "command_line": " ".join(fleet.command_line) or "–",
        "hosts": [outcome.name for outcome in fleet.hosts], "machines": fleet.machines(),
        "measured_hosts": list(fleet.runs), "rows": side_by_side(fleet),
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
