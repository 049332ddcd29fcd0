"""Is the built-in load generator a bottleneck? Runs the `generator-check` scenario (bare /hello,
built-in generator and wrk alternating, same pinning) and prints built-in / wrk throughput with a
bootstrap 95% interval.

    .venv/bin/python scripts/generator_check.py [--repeat N] [--duration S]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import results, stats
from bench.runner import run_scenario
from bench.scenario import apply_overrides, load_scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    scenario = apply_overrides(load_scenario("generator-check"), repeat=args.repeat, duration=args.duration)
    with tempfile.TemporaryDirectory(prefix="layerbench-gencheck-") as folder:
        record = results.load_run(run_scenario(scenario, Path(folder)))
    values = {name: [t.load["throughput_rps"] for t in record.ok_trials() if t.workload == name]
              for name in ("hello-builtin", "hello-wrk")}
    for name, numbers in values.items():
        print(f"{name:14} req/s per repeat: {', '.join(f'{v:,.0f}' for v in numbers)}")
    ratio = stats.ratio_ci(values["hello-builtin"], values["hello-wrk"], seed=scenario.seed)
    print(f"built-in / wrk = {ratio.median:.3f} (95% interval {ratio.low:.3f}..{ratio.high:.3f}); "
          f"pinning {record.pinning}")
    return 0 if ratio.median >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
