"""Charts draw names from run.json: control characters are shown escaped, but the line breaks
layerbench lays its titles and ticks out with are kept."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from bench.outputs.plots._common import chart_text, new_figure, save  # noqa: E402


pytestmark = pytest.mark.real_charts  # what this file tests is the rendering itself


def test_line_breaks_stay_and_other_control_characters_are_escaped():
    assert chart_text("throughput\n(lower is worse)") == "throughput\n(lower is worse)"
    assert chart_text("evil\x1b[2Jname\u202e") == "evil\\x1b[2Jname\\u202e"


def test_a_saved_chart_keeps_its_two_line_title_and_escapes_a_hostile_tick(tmp_path):
    figure = new_figure(4, 3)
    ax = figure.subplots()
    ax.set_title("p99 latency\n(higher is worse)")
    ax.set_xticks([0, 1], ["bare", "vm\x07(tcg)\nsecond line"])
    save(figure, tmp_path, "chart")
    assert ax.get_title() == "p99 latency\n(higher is worse)"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["bare", "vm\\x07(tcg)\nsecond line"]
    assert (tmp_path / "chart.png").stat().st_size > 0
    assert "\\n" not in (tmp_path / "chart.svg").read_text()
