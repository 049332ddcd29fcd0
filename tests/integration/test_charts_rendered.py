"""Every chart rendered for real, PNG and SVG, from the frozen fixture run with data for all of them
(density, network paths, two apps). No engine: here rather than in tests/unit because rendering every
chart twice costs ~15 s of CPU, a quarter of the unit suite's budget; the unit tests build each
chart's figure and write a stand-in file (tests/chart_stand_in.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.outputs.plots import CHARTS, render_all
from tests.network_paths import with_network_paths
from tests.unit.test_plots import PNG_MAGIC, copy_run, with_density, with_two_apps

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("charts")]  # one worker draws the run once


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[Path]]:
    run_dir = copy_run(tmp_path_factory.mktemp("rendered"),
                       lambda data: (with_density(data), with_network_paths(data), with_two_apps(data)))
    paths = render_all(run_dir)
    assert all(path.parent == run_dir / "charts" for path in paths)
    return {name: sorted((p for p in paths if p.stem == name), key=lambda p: p.suffix) for name in CHARTS}


@pytest.mark.parametrize("name", list(CHARTS))
def test_every_chart_writes_a_png_and_an_svg(name, rendered):
    assert [p.suffix for p in rendered[name]] == [".png", ".svg"]
    png, svg = rendered[name]
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 10_000  # a real picture, not an empty canvas
    assert "<svg" in svg.read_text()[:2000]
