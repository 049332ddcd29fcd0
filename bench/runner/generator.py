"""Which load generator a trial's workload asks for, and what it is asked to do."""

from __future__ import annotations

from bench.load.builtin import LoadResult, LoadSpec, run_load
from bench.netutil import LOOPBACK
from bench.runner.measure import LoadFn
from bench.scenario import Workload
from bench.setups.base import Pinning


def load_spec(workload: Workload, host: str = LOOPBACK) -> LoadSpec:
    """What the generator is asked to do for a workload (here, or on a split run's load host)."""
    return LoadSpec(path=workload.url_path, mode=workload.mode, connections=workload.connections,
                    duration_s=workload.duration, warmup_s=workload.warmup, rate_rps=workload.rate,
                    processes="auto", host=host)  # one generator process per load CPU


def generator_for(pinning: Pinning, host: str = LOOPBACK) -> LoadFn:
    """The load generator a workload asks for (built-in or wrk), on the load CPUs, targeting `host`
    (127.0.0.1; a container's own IP only for a variant that asks for it: see measure.load_for)."""
    def load(port: int, workload: Workload) -> LoadResult:
        spec = load_spec(workload, host)
        if workload.load == "wrk":
            from bench.load import wrk  # optional external generator

            return wrk.run_wrk(port, spec, pinning.load_cpus)
        return run_load(port, spec)
    return load
