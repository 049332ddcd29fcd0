"""Measurement check, run by a developer: does the regression gate have power? Runs pairs of the
`gate-check` scenario (bare /cpu, short rounds, under a minute each) through the runner and gates
each pair with every rule of --gates, the way `bench compare A B --fail-on RULE` does: by default
the app's own time per request at its fast end (`app_time_p5_ms:+5%`, the rule gate-check's scenario
carries), its median, throughput and CPU per request:

  A/A  both runs do the same work: the gate should pass;
  A/B  the second run hashes 15% more per request (param 1150 against 1000): it should fail.

Pairs alternate A/A and A/B, so a drift of the machine hits both kinds alike. Prints one line per
pair (the ratio B/A with its interval and the gate's outcome, for each gate, each run's wall time) and
the tally. The exit status judges the first rule given with --gates.

    .venv/bin/python -m tools.gate_check [--pairs 10] [--keep DIR]
                                         [--gates app_time_p5_ms:+5%,app_time_p50_ms:+5%,throughput_rps:-5%,cpu_us_per_request:+5%]
                                         [--repeat N] [--duration S]  # the scenario's own by default

Exit 0 when at least 9 in 10 A/A pairs passed and 9 in 10 A/B pairs failed, 3 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.gate import parse_thresholds
from bench.runner import run_scenario
from bench.scenario import Scenario, apply_overrides, load_scenario

MORE_WORK = 1150  # against the scenario's 1000: 15% more hashing per request
BELOW_GOAL = 3


def _run(scenario: Scenario, out: Path) -> tuple[Path, float]:
    """One run of the scenario into `out`: (run folder, wall seconds)."""
    began = time.monotonic()
    run_dir = run_scenario(scenario, out)
    return run_dir, time.monotonic() - began


def _gate(base: Path, new: Path, rule_text: str) -> tuple[str, str]:
    """The gate's outcome (passed, failed, undecided) for one rule, and its ratio B/A with the
    interval: the same code `bench compare --fail-on` runs."""
    from bench import gate
    from bench.compare import compare_runs

    comparison = compare_runs([base, new])
    (rule,) = gate.parse_thresholds(rule_text)
    result = gate.check(comparison, (rule,))
    outcome = "failed" if not result.passed else "undecided" if result.undecided else "passed"
    ratio = gate.change(comparison.runs[0], comparison.runs[1], comparison.runs[0].cells[0].key, rule)
    return outcome, f"{ratio.median:.3f} [{ratio.low:.3f}–{ratio.high:.3f}]"


def _scenarios(repeat: int | None, duration_s: float | None) -> tuple[Scenario, Scenario]:
    """gate-check as shipped (or shortened), and the same with 15% more work per request."""
    fields = {key: value for key, value in (("repeat", repeat), ("duration", duration_s)) if value is not None}
    base = apply_overrides(load_scenario("gate-check"), **fields)
    more = load_scenario("gate-check").model_dump()
    more["workloads"][0]["param"] = MORE_WORK
    more = apply_overrides(Scenario.model_validate(more), **fields)
    return base, more


# The scenario's rule first (it sets the exit status), then the figures it is weighed against.
DEFAULT_GATES = "app_time_p5_ms:+5%,app_time_p50_ms:+5%,throughput_rps:-5%,cpu_us_per_request:+5%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="pairs of each kind")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder (default: a temp folder)")
    parser.add_argument("--gates", default=DEFAULT_GATES,
                        help="gate rules as --fail-on takes them, comma-separated; the first sets the exit status")
    parser.add_argument("--repeat", type=int, help="rounds per run (default: the scenario's)")
    parser.add_argument("--duration", type=float, help="seconds per trial (default: the scenario's)")
    args = parser.parse_args(argv)
    gates = [rule.strip() for rule in args.gates.split(",") if rule.strip()]
    for rule in gates:  # a malformed rule is an error before the first run, not after ten minutes
        try:
            parse_thresholds(rule)
        except ValueError as error:
            parser.error(str(error))
    base_scenario, more_scenario = _scenarios(args.repeat, args.duration)
    folder = Path(tempfile.mkdtemp(prefix="layerbench-gatecheck-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    tally = {gate: {"A/A": [], "A/B": []} for gate in gates}
    try:
        print(f"{'pair':>4}  {'kind':4}  " + "  ".join(f"{gate + ' B/A [95%]':34}  {'gate':9}" for gate in gates)
              + "  walls (s)")
        for index in range(args.pairs * 2):
            kind = "A/A" if index % 2 == 0 else "A/B"
            first, first_s = _run(base_scenario, folder / f"{index:02d}-a")
            second, second_s = _run(base_scenario if kind == "A/A" else more_scenario, folder / f"{index:02d}-b")
            line = f"{index + 1:>4}  {kind:4}  "
            for gate in gates:
                outcome, ratio = _gate(first, second, gate)
                tally[gate][kind].append(outcome)
                line += f"{ratio:34}  {outcome:9}  "
            print(line + f"{first_s:.0f}, {second_s:.0f}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    for gate in gates:
        same_passed = sum(outcome != "failed" for outcome in tally[gate]["A/A"])
        slower_failed = sum(outcome == "failed" for outcome in tally[gate]["A/B"])
        print(f"{gate}: A/A passed {same_passed} of {args.pairs}; A/B failed {slower_failed} of "
              f"{args.pairs} (goal: 9 in 10 each)")
    first = tally[gates[0]]
    good = (sum(o != "failed" for o in first["A/A"]) >= 0.9 * args.pairs
            and sum(o == "failed" for o in first["A/B"]) >= 0.9 * args.pairs)
    return 0 if good else BELOW_GOAL


if __name__ == "__main__":
    sys.exit(main())
