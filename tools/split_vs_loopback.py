"""Measurement check, run by a developer: the split run's /hello beside the same scenario on
loopback, on the same target host.

    .venv/bin/python -m tools.split_vs_loopback [--rounds 2] [--duration 5] [--repeat 5]
    .venv/bin/python -m tools.split_vs_loopback --local   # no test hosts: loopback on this machine only

Starts two test hosts with their own Docker engine (tests/testhosts.py), then alternates, round
by round, `bench run --hosts lab2 --load-from lab1` (load from lab1 over the hosts' network) and
`bench run --hosts lab2` (load from lab2 itself, over loopback), bare and container, and prints
each run's /hello throughput and p99 with their 95% intervals. Both "hosts" are containers on
this machine: they share its CPUs, so this compares mechanics, not a real NIC. `--local` runs the
loopback half against `--hosts local` (this machine, no engine with `--setups bare`): the whole
pipeline of the check, for a quick look that it still works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-m", "bench"]
TARGET, LOAD_FROM = "lab2", "lab1"


def one_run(kind: str, common: list[str], inventory: Path | None, out: Path, target: str) -> dict:
    """One `bench run` of this kind against `target`; its /hello cells as `bench show` states them."""
    extra = ["--hosts", target] + (["--load-from", LOAD_FROM] if kind == "split" else [])
    extra += ["--inventory", str(inventory)] if inventory is not None else []
    before = set(out.iterdir())
    command = [*BENCH, "run", *common, *extra, "--out", str(out)]
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    fleet = sorted(set(out.iterdir()) - before)[-1]
    summary = json.loads(subprocess.run([*BENCH, "show", str(fleet), "--format", "json"], cwd=ROOT,
                                        capture_output=True, text=True).stdout)["hosts"][target]
    return {"kind": kind, "fleet": str(fleet), "command": " ".join(["bench", *command[3:]]),
            "cells": {cell["label"]: {"rps": cell["throughput_rps"], "p99_ms": cell["latency_p99_ms_ci"]}
                      for cell in summary["results"]}}


def _print(run: dict) -> None:
    for label, cell in run["cells"].items():
        rps, p99 = cell["rps"], cell["p99_ms"]
        print(f"{run['kind']:8} {label:20} {rps['median']:8,.0f} req/s [{rps['low']:,.0f}-{rps['high']:,.0f}]"
              f"  p99 {p99['median']:.2f} ms [{p99['low']:.2f}-{p99['high']:.2f}]  {run['fleet']}", flush=True)


@contextlib.contextmanager
def _hosts(local: bool, out: Path):
    """(inventory, target host, kinds of run): two test hosts, or this machine alone."""
    if local:
        yield None, "local", ("loopback",)
        return
    sys.path.insert(0, str(ROOT))
    from tests.testhosts import start_hosts, write_inventory

    with start_hosts(2, docker=True) as hosts:
        yield write_inventory(hosts, out / "inventory.yml"), TARGET, ("split", "loopback")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", default="5")
    parser.add_argument("--warmup", default="1")
    parser.add_argument("--repeat", default="5")
    parser.add_argument("--setups", default="bare,container")
    parser.add_argument("--local", action="store_true", help="no test hosts: the loopback runs on this machine")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "split-vs-loopback")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--setups", args.setups, "--workloads", "hello", "--duration", args.duration, "--warmup",
              args.warmup, "--repeat", args.repeat, "--no-report"]
    runs = []
    with _hosts(args.local, args.out) as (inventory, target, kinds):
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
            for kind in kinds:
                runs.append(one_run(kind, common, inventory, args.out, target))
                _print(runs[-1])
    (args.out / "split-vs-loopback.json").write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill PID` removes the hosts like Ctrl-C
    raise SystemExit(main())
