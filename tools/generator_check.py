"""Measurement check, run by a developer: is the built-in load generator a bottleneck? Drives one
target alternately with the built-in generator and with wrk (one thread, same connections, same
pinning) and prints built-in / wrk throughput with a 95% interval, and how busy each generator was.

  --target app    (default) the `generator-check` scenario through the runner: bare /hello of
                  layerbench's own app, both generators in each start, sending the same headers.
                  Exit 3 when the median of the rounds' built-in / wrk is below 0.95 (the goal).
  --target nginx  Debian's nginx (one worker, `return 200`) started here in a temporary folder;
                  fast enough that the client is what gets measured. Exit 3 when built-in / wrk
                  is below 0.9 (the goal), so the built-in generator is the limit on such a server.

Exit 0: at or above the goal; 3: measured, below the goal; 2: an error; 130: interrupted.

    .venv/bin/python -m tools.generator_check [--target app|nginx] [--repeat N] [--duration S]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import stats
from bench.load import reference_nginx, wrk
from bench.load.builtin import LoadResult, LoadSpec, is_generator_bound, run_load
from tools.exits import run_check

NGINX_GOAL = 0.9  # built-in / wrk the built-in generator should reach on a fast server
APP_GOAL = 0.95  # ... and on layerbench's own app
BELOW_GOAL = 3  # the exit status of a measurement below its goal (1 is Python's own for a crash)
SEED = 12


def app_rounds(repeat: int, duration: float) -> tuple[dict[str, list[float]], object]:
    """The generator-check scenario through the runner: ({workload: throughput per round}, the run record)."""
    from bench import results
    from bench.runner import run_scenario
    from bench.scenario import apply_overrides, load_scenario

    scenario = apply_overrides(load_scenario("generator-check"), repeat=repeat, duration=duration)
    with tempfile.TemporaryDirectory(prefix="layerbench-gencheck-") as folder:
        record = results.load_run(run_scenario(scenario, Path(folder)))
    by_round = {name: {t.repeat: t.load.throughput_rps for t in record.ok_trials() if t.workload == name}
                for name in ("hello-builtin", "hello-wrk")}
    rounds = sorted(set(by_round["hello-builtin"]) & set(by_round["hello-wrk"]))  # rounds where both ran
    return {name: [values[r] for r in rounds] for name, values in by_round.items()}, record


def round_ratios(builtin: list[float], reference: list[float]) -> list[float]:
    """Each round's built-in / wrk: the two ran in one start, next to each other, so the machine's
    drift between rounds cancels out of each ratio."""
    return [b / w for b, w in zip(builtin, reference) if w > 0]


def check_app(repeat: int, duration: float) -> int:
    """Today's check: the generator-check scenario through the runner."""
    values, record = app_rounds(repeat, duration)
    for name, numbers in values.items():
        print(f"{name:14} req/s per repeat: {', '.join(f'{v:,.0f}' for v in numbers)}")
    per_round = round_ratios(values["hello-builtin"], values["hello-wrk"])
    ratio = stats.ratio_ci(values["hello-builtin"], values["hello-wrk"], seed=SEED)
    middle = float(np.median(per_round))
    print(f"built-in / wrk per round: {', '.join(f'{r:.3f}' for r in per_round)}; median {middle:.3f}; "
          f"ratio of medians {ratio.median:.3f} (95% interval {ratio.low:.3f}..{ratio.high:.3f}); "
          f"pinning {record.pinning}")
    return 0 if middle >= APP_GOAL else BELOW_GOAL


def _cpu_per_request_us(result: LoadResult) -> float:
    return result.generator_cpu_s / result.requests * 1e6 if result.requests else float("nan")


def _describe(name: str, result: LoadResult) -> str:
    runnable = result.generator_runnable_fraction
    flag = "  GENERATOR-BOUND" if is_generator_bound(result) else ""
    errors = f", errors {result.errors}" if result.errors else ""
    return (f"{name:8} {result.throughput_rps:>10,.0f} req/s  generator CPU {result.generator_cpu_s:.2f} s "
            f"({_cpu_per_request_us(result):.2f} us/request), busy {result.generator_busy_fraction:.2f}, runnable "
            f"{'n/a' if runnable is None else f'{runnable:.2f}'}{errors}{flag}")


def _default_cpus() -> tuple[int, tuple[int, ...]]:
    """The app on the last CPU this process may use, the load on the others (or the same one)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-1], tuple(cpus[:-1] or cpus)


def _alternate(port: int, spec: LoadSpec, load_cpus: tuple[int, ...], repeat: int) -> dict[str, list[LoadResult]]:
    """Built-in and wrk in turn (A B, B A, ...), so drift hits both alike; one line per trial."""
    results: dict[str, list[LoadResult]] = {"builtin": [], "wrk": []}
    for index in range(repeat):
        for name in ("builtin", "wrk") if index % 2 == 0 else ("wrk", "builtin"):
            result = run_load(port, spec) if name == "builtin" else wrk.run_wrk(port, spec, load_cpus)
            results[name].append(result)
            print(f"repeat {index + 1}/{repeat} {_describe(name, result)}", flush=True)
    return results


def nginx_rounds(repeat: int, duration: float, connections: int) -> tuple[dict[str, list[LoadResult]], int, tuple]:
    """Built-in and wrk alternately against nginx: ({generator: results}, nginx's CPU, the load CPUs)."""
    for reason in (reference_nginx.available(), wrk.available()):
        if reason:
            raise RuntimeError(reason)
    app_cpu, load_cpus = _default_cpus()
    spec = LoadSpec(path=reference_nginx.HELLO_PATH, connections=connections, duration_s=duration, warmup_s=1.0,
                    processes="auto")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, load_cpus)  # the built-in generator runs here (one process per CPU); wrk gets taskset
    try:
        with reference_nginx.running(app_cpu) as port:
            return _alternate(port, spec, load_cpus, repeat), app_cpu, load_cpus
    finally:
        os.sched_setaffinity(0, before)


def check_nginx(repeat: int, duration: float, connections: int) -> int:
    """Built-in and wrk alternately against nginx; one line per trial, then the ratios."""
    results, app_cpu, load_cpus = nginx_rounds(repeat, duration, connections)
    builtin, reference = results["builtin"], results["wrk"]
    ratio = stats.ratio_ci([r.throughput_rps for r in builtin], [r.throughput_rps for r in reference], seed=SEED)
    cost = stats.ratio_ci([_cpu_per_request_us(r) for r in reference], [_cpu_per_request_us(r) for r in builtin],
                          seed=SEED)
    bound = sum(is_generator_bound(r) for r in builtin)
    print(f"built-in / wrk on nginx = {ratio.median:.3f} (95% interval {ratio.low:.3f}..{ratio.high:.3f}); "
          f"nginx worker on CPU {app_cpu}, load on CPUs {list(load_cpus)}, {connections} connections, "
          f"{repeat} repeats of {duration:g} s; built-in generator-bound in {bound} of {repeat} trials")
    print(f"CPU per request, wrk / built-in = {cost.median:.3f} (95% interval {cost.low:.3f}..{cost.high:.3f}): "
          f"the built-in's ceiling relative to wrk's when both are CPU-bound")
    return 0 if ratio.median >= NGINX_GOAL else BELOW_GOAL


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("app", "nginx"), default="app")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8, help="nginx target only (the scenario sets its own)")
    args = parser.parse_args(argv)
    if args.target == "nginx":
        return run_check(lambda: check_nginx(args.repeat, args.duration, args.connections))
    return run_check(lambda: check_app(args.repeat, args.duration))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # nginx and temp folders are cleaned up either way
    sys.exit(main())
