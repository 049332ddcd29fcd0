"""Before a long trial starts, the run says what its raw latencies will cost on disk."""

from __future__ import annotations

import numpy as np

from bench.events import DiskEstimate
from bench.load.builtin import LoadResult
from bench.runner import Runner
from bench.runner.figures import disk_estimate
from bench.scenario import BUILTIN_WORKLOADS, Workload, parse_scenario
from tests.fake_setup import registered


def test_the_estimate_uses_the_best_rate_known_and_says_which():
    long = Workload(name="hello", endpoint="hello", duration=60)
    assert disk_estimate(BUILTIN_WORKLOADS["hello"], [20_000.0], []) is None  # 10 s: not a long trial
    assert disk_estimate(long, [20_000.0, 18_000.0], [50_000.0]) == (
        "this 60 s trial will store about 18 MiB of raw latencies (16 bytes per request at the 20,000 req/s "
        "its earlier repeats reached)")
    assert "the fastest trial so far reached" in disk_estimate(long, [], [5_000.0])
    assert disk_estimate(long, [], []) == "a 60 s trial stores 16 bytes per request: about 9 MiB per 10,000 req/s " \
                                          "it reaches"
    opened = Workload(name="o", endpoint="hello", duration=3600, mode="open", rate=1000)
    assert "about 55 MiB" in disk_estimate(opened, [], []) and "open-loop rate" in disk_estimate(opened, [], [])


def test_the_runner_says_it_before_each_long_trial(tmp_path):
    def instant(port, workload) -> LoadResult:  # a long trial's figures without its 45 s
        return LoadResult(requests=900_000, errors={}, duration_s=45.0, latency_ms=np.ones(10), app_ms=np.ones(10),
                          window=(0.0, 0.01))
    events = []
    with registered():
        scenario = parse_scenario("name: long\nsetups: [inproc]\nworkloads: [{name: hello, endpoint: hello, "
                                  "duration: 45, warmup: 0}]\nrepeat: 2\n")
        Runner(scenario, tmp_path, progress=events.append, load=instant).run()
    said = [event.message for event in events if isinstance(event, DiskEstimate)]
    assert said[0] == "inproc/hello/r0: a 45 s trial stores 16 bytes per request: about 7 MiB per 10,000 req/s it reaches"
    assert said[1] == ("inproc/hello/r1: this 45 s trial will store about 14 MiB of raw latencies (16 bytes per "
                       "request at the 20,000 req/s its earlier repeats reached)")
