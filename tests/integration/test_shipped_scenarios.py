"""Shipped scenarios' charts and report drawn for real, from a run of stand-in setups and apps
(tests/stand_ins.py): `bench run` writes the report with every chart that has data, and compare
writes its page. No engine is needed; drawing is what makes this slower than tests/unit's twin,
which takes every shipped scenario through every output with each chart's figure built but not
rasterised. Here, the scenarios whose chart sets differ: together they draw every chart a shipped
scenario draws with stand-ins (the time series needs real samples: tests/integration/test_charts_rendered.py)."""

from __future__ import annotations

import pytest

from bench.scenario import shipped
from tests.stand_ins import bench_ok, run_shipped

pytestmark = pytest.mark.integration


# full: every layer and the start-up charts; apps: by-app; density: memory per instance; network: the
# journey; startup, gate-check and generator-check: runs without the headline chart.
DRAWN = ("full", "apps", "density", "network", "startup", "gate-check", "generator-check")


def test_the_drawn_scenarios_are_shipped():
    assert set(DRAWN) <= set(shipped())


@pytest.mark.parametrize("name", DRAWN)
def test_a_shipped_scenario_draws_its_report_and_charts(name, tmp_path, monkeypatch):
    run_dir = run_shipped(name, tmp_path, monkeypatch, report=True)
    assert (run_dir / "report.html").is_file()
    pngs = list((run_dir / "charts").glob("*.png"))
    assert "headline.png" in {path.name for path in pngs} or name in ("startup", "generator-check", "gate-check")
    assert len(list((run_dir / "charts").glob("*.svg"))) == len(pngs)
    page = tmp_path / "compared"
    bench_ok("compare", str(run_dir), str(run_dir), "--out", str(page))
    assert (page / "compare.html").is_file()
