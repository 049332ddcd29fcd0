"""The split run's /hello beside the same scenario on loopback, on the same target host.

    .venv/bin/python scripts/split_vs_loopback.py [--rounds 2] [--duration 5] [--repeat 5]

Starts two test hosts with their own Docker engine (tests/testhosts.py), then alternates, round
by round, `bench run --hosts lab2 --load-from lab1` (load from lab1 over the hosts' network) and
`bench run --hosts lab2` (load from lab2 itself, over loopback), bare and container, and prints
each run's /hello throughput and p99 with their 95% intervals. Both "hosts" are containers on
this machine: they share its CPUs, so this compares mechanics, not a real NIC.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.testhosts import start_hosts, write_inventory  # noqa: E402

BENCH = [sys.executable, "-m", "bench"]


def one_run(kind: str, common: list[str], inventory: Path, out: Path) -> dict:
    extra = ["--hosts", "lab2", "--load-from", "lab1"] if kind == "split" else ["--hosts", "lab2"]
    before = set(out.iterdir())
    command = [*BENCH, "run", *common, *extra, "--inventory", str(inventory), "--out", str(out)]
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    fleet = sorted(set(out.iterdir()) - before)[-1]
    summary = json.loads(subprocess.run([*BENCH, "show", str(fleet), "--format", "json"], cwd=ROOT,
                                        capture_output=True, text=True).stdout)["hosts"]["lab2"]
    return {"kind": kind, "fleet": str(fleet), "command": " ".join(["bench", *command[3:]]),
            "cells": {cell["label"]: {"rps": cell["throughput_rps"], "p99_ms": cell["latency_p99_ms_ci"]}
                      for cell in summary["results"]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", default="5")
    parser.add_argument("--repeat", default="5")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "split-vs-loopback")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--setups", "bare,container", "--workloads", "hello", "--duration", args.duration, "--warmup", "1",
              "--repeat", args.repeat, "--no-report"]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill PID` removes the hosts like Ctrl-C
    runs = []
    with start_hosts(2, docker=True) as hosts:
        inventory = write_inventory(hosts, args.out / "inventory.yml")
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
            for kind in ("split", "loopback"):
                runs.append(one_run(kind, common, inventory, args.out))
                for label, cell in runs[-1]["cells"].items():
                    rps, p99 = cell["rps"], cell["p99_ms"]
                    print(f"{kind:8} {label:20} {rps['median']:8,.0f} req/s [{rps['low']:,.0f}-{rps['high']:,.0f}]"
                          f"  p99 {p99['median']:.2f} ms [{p99['low']:.2f}-{p99['high']:.2f}]  {runs[-1]['fleet']}",
                          flush=True)
    (args.out / "split-vs-loopback.json").write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
