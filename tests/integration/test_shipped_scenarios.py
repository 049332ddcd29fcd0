"""Every shipped scenario's charts and report, drawn from a run of stand-in setups and apps
(tests/stand_ins.py): `bench run` writes the report with every chart that has data, and compare
writes its page. No engine is needed; drawing is what makes this slower than tests/unit's twin."""

from __future__ import annotations

import pytest

from bench.scenario import shipped
from tests.stand_ins import bench_ok, run_shipped

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(shipped()))
def test_a_shipped_scenario_draws_its_report_and_charts(name, tmp_path, monkeypatch):
    run_dir = run_shipped(name, tmp_path, monkeypatch, report=True)
    assert (run_dir / "report.html").is_file()
    pngs = list((run_dir / "charts").glob("*.png"))
    assert "headline.png" in {path.name for path in pngs} or name in ("startup", "generator-check", "gate-check")
    assert len(list((run_dir / "charts").glob("*.svg"))) == len(pngs)
    page = tmp_path / "compared"
    bench_ok("compare", str(run_dir), str(run_dir), "--out", str(page))
    assert (page / "compare.html").is_file()
