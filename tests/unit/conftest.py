"""What every unit test shares: no chart is rendered and no load is sent through the runner.

- Charts: each chart's figure is built, but a stand-in file is written instead of rendering it
  (tests/chart_stand_in.py says why). Tests marked `real_charts` render for real.
- Load: the runner's generator is tests/stand_ins.fake_load_with(0.12): seeded figures in a 0.12 s
  window the sampler brackets (one tick inside it: memory figures too), no request sent. The
  generator itself is unit-tested on its own (test_loadgen*.py), and the runner with real load in
  tests/integration.
"""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from tests import chart_stand_in
from tests.stand_ins import fake_load_with

# At import, not in a function fixture: module-scoped fixtures that write reports run before those.
chart_stand_in.install()
UNIT_LOAD = fake_load_with(0.12)


@pytest.fixture(autouse=True)
def real_charts_when_marked(request, monkeypatch):
    if request.node.get_closest_marker("real_charts") is not None:
        monkeypatch.setattr(Figure, "savefig", chart_stand_in.REAL_SAVEFIG)
    yield


@pytest.fixture(autouse=True, scope="session")
def no_load_through_the_runner():
    import bench.runner

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.runner, "generator_for", lambda pinning: UNIT_LOAD)
        yield
