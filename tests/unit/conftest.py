"""What every unit test shares: no chart is rendered, no load is sent through the runner, no engine is asked.

- Charts: each chart's figure is built, but a stand-in file is written instead of rendering it
  (tests/chart_stand_in.py says why). Tests marked `real_charts` render for real.
- Load: the runner's generator is tests/stand_ins.fake_load_with(0.12): seeded figures in a 0.12 s
  window the sampler brackets (one tick inside it: memory figures too), no request sent. The
  generator itself is unit-tested on its own (test_loadgen*.py), and the runner with real load in
  tests/integration.
- Leftovers: `bench run` first looks for what killed runs left running; in unit tests the container
  setup reports none instead of asking Docker and Podman.

All three are set by tests/conftest.py's pytest_runtest_setup before each test's fixtures (module-scoped
ones included), and undone there for every test outside tests/unit: one pytest process runs both
folders, and a stand-in left in place would make an integration test draw and load nothing.
"""
