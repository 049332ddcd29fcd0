"""Measurement check, run by a developer: layerbench's own speed figures, each measured on this
machine and printed next to its goal (the goals are in the rows below).

  quick      `bench run quick` as a user runs it (a subprocess, report included): its wall time, and
             from that run the sampler's own CPU at 10 Hz, median over the load trials
  generator  built-in / wrk on bare /hello of layerbench's app: the generator-check scenario (both
             generators in each start, -c8, pinned alike, the same headers); the median of the
             rounds' ratios
  nginx      built-in / wrk on Debian's nginx, alternating A B, B A (tools/generator_check.py
             --target nginx); the median of the rounds' ratios
  vm         the VM (TCG) as the classroom scenario runs it: cold starts (launch to first 200), and
             QEMU's RSS in an idle window after /hello and /cpu load

The machine is shared: each figure says how many cores other processes kept busy meanwhile.
Exit 0 when every figure measured meets its goal, 3 when one does not, 2 on an error.

    .venv/bin/python -m tools.speed_check [--only quick,generator,nginx,vm] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import results, stats
from bench.roles import ROLE_HYPERVISOR
from bench.runner import run_scenario
from bench.scenario import parse_scenario
from tools import generator_check
from tools.exits import run_check

PARTS = ("quick", "generator", "nginx", "vm")  # in the order they run
BELOW_GOAL = 3
MB = 1024 * 1024  # as every figure of layerbench's output
VM_SCENARIO = """
name: speed-check-vm
description: the VM rows of the classroom scenario (its start-up and idle footprint)
setups: [vm]
workloads:
  - startup
  - {name: hello, endpoint: hello, connections: 8, duration: 3, warmup: 1}
  - {name: cpu, endpoint: cpu, param: 1000, connections: 8, duration: 3, warmup: 1}
  - {name: idle, kind: idle, duration: 2, warmup: 0.5}
repeat: %d
"""


@dataclass
class Figure:
    name: str
    goal: str
    measured: str
    meets: bool
    foreign: str  # how busy other processes kept the machine meanwhile


def _median(values) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def _foreign(record) -> str:
    """Cores other processes used during a run's trials (the runner measures it per trial)."""
    values = [t.host.foreign_cpu_cores for t in record.ok_trials() if t.host.foreign_cpu_cores is not None]
    return f"{_median(values):.2f} [{min(values):.2f}-{max(values):.2f}]" if values else "n/a"


class ForeignLoad:
    """Cores kept busy by processes other than this one and its children, over a with-block."""

    def __enter__(self) -> "ForeignLoad":
        self.began, self.busy, self.own = time.monotonic(), _host_busy_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc_info) -> None:
        wall = time.monotonic() - self.began
        self.cores = max(0.0, (_host_busy_s() - self.busy) - (_own_cpu_s() - self.own)) / wall if wall > 0 else 0.0

    def __str__(self) -> str:
        return f"{self.cores:.2f}"


def _host_busy_s() -> float:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _own_cpu_s() -> float:
    times = os.times()  # children: those reaped so far (QEMU, nginx, wrk, the quick run's bench)
    return times.user + times.system + times.children_user + times.children_system


def measure_quick(repeat: int) -> list[Figure]:
    """`repeat` is the scenario's own (2): the figure is the quick run as a user runs it."""
    with tempfile.TemporaryDirectory(prefix="layerbench-speed-") as folder:
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "bench", "run", "quick", "--out", folder],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall_s = time.monotonic() - began
        if done.returncode != 0:
            raise RuntimeError(f"bench run quick exited {done.returncode}: {done.stderr.strip()[-300:]}")
        record = results.load_run(next(Path(folder).iterdir()))
    return quick_figures(record, wall_s)


def quick_figures(record, wall_s: float) -> list[Figure]:
    """The quick run's rows: the sampler's CPU over its load trials, and its wall time."""
    fractions = [t.sampler.own_cpu_fraction for t in record.ok_trials() if t.kind == "load" and t.sampler]
    sampler = _median(fractions)
    return [Figure("sampler CPU at 10 Hz, median over the load trials of one quick run", "under 1% of one core",
                   f"{sampler:.2%} [{min(fractions):.2%}-{max(fractions):.2%}], {len(fractions)} trials",
                   sampler < 0.01, _foreign(record)),
            Figure("`bench run quick` wall time (report included)", "45 s or less", f"{wall_s:.1f} s",
                   wall_s <= 45, _foreign(record))]


def measure_generator(repeat: int) -> list[Figure]:
    values, record = generator_check.app_rounds(repeat, 5.0)
    per_round = generator_check.round_ratios(values["hello-builtin"], values["hello-wrk"])
    middle = _median(per_round)
    pooled = stats.ratio_ci(values["hello-builtin"], values["hello-wrk"], seed=generator_check.SEED)
    return [Figure("built-in / wrk, bare python /hello, -c8, pinned alike, same headers",
                   f"{generator_check.APP_GOAL} or more",
                   f"{middle:.3f} median of {len(per_round)} rounds [{min(per_round):.3f}-{max(per_round):.3f}]; "
                   f"ratio of medians {pooled.median:.3f} ({pooled.low:.3f}..{pooled.high:.3f})",
                   middle >= generator_check.APP_GOAL, _foreign(record))]


def measure_nginx(repeat: int) -> list[Figure]:
    with ForeignLoad() as foreign:
        rounds, _, _ = generator_check.nginx_rounds(repeat, 5.0, 8)
    builtin, reference = [r.throughput_rps for r in rounds["builtin"]], [r.throughput_rps for r in rounds["wrk"]]
    per_round = generator_check.round_ratios(builtin, reference)  # each round's pair ran back to back
    middle = _median(per_round)
    pooled = stats.ratio_ci(builtin, reference, seed=generator_check.SEED)
    return [Figure("built-in / wrk, Debian's nginx /hello, -c8, alternating", f"{generator_check.NGINX_GOAL} or more",
                   f"{middle:.3f} median of {len(per_round)} rounds [{min(per_round):.3f}-{max(per_round):.3f}]; "
                   f"ratio of medians {pooled.median:.3f} ({pooled.low:.3f}..{pooled.high:.3f}) "
                   f"at {_median(reference):,.0f} req/s (wrk)",
                   middle >= generator_check.NGINX_GOAL, str(foreign))]


def measure_vm(repeat: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="layerbench-speed-") as folder:
        record = results.load_run(run_scenario(parse_scenario(VM_SCENARIO % repeat), Path(folder)))
    return vm_figures(record)


def vm_figures(record) -> list[Figure]:
    """The VM's rows: launch to first 200 of its cold starts, QEMU's RSS in its idle trials."""
    starts = [t.startup_s for t in record.ok_trials() if t.kind == "startup" and t.startup_s]
    rss = [t.roles[ROLE_HYPERVISOR].rss_bytes / MB for t in record.ok_trials()
           if t.kind == "idle" and ROLE_HYPERVISOR in t.roles]
    accel = {t.facts.accel for t in record.ok_trials()}
    return [Figure(f"VM ({'/'.join(sorted(map(str, accel)))}) launch to first 200, median of cold starts",
                   "4.0 s or less", f"{_median(starts):.2f} s [{min(starts):.2f}-{max(starts):.2f}], {len(starts)} starts",
                   _median(starts) <= 4.0, _foreign(record)),
            Figure("QEMU host RSS, idle (after /hello and /cpu load)", "200 MB or less",
                   f"{_median(rss):.0f} MB [{min(rss):.0f}-{max(rss):.0f}], {len(rss)} idle trials",
                   _median(rss) <= 200, _foreign(record))]


MEASURES = {"quick": measure_quick, "generator": measure_generator, "nginx": measure_nginx, "vm": measure_vm}


def machine_line() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return (f"{model}, {os.cpu_count()} vCPUs, Linux {platform.release()}, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}")


def render(figures: list[Figure]) -> str:
    rows = [("figure", "goal", "measured here", "other processes (cores)", "meets goal")]
    rows += [(f.name, f.goal, f.measured, f.foreign, "yes" if f.meets else "NO") for f in figures]
    return "\n".join("| " + " | ".join(row) + " |" + ("\n|---|---|---|---|---|" if index == 0 else "")
                     for index, row in enumerate(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the generator checks, starts of the VM")
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    print(f"machine: {machine_line()}", flush=True)
    return run_check(lambda: _measure_and_print(parts, args.repeat))


def _measure_and_print(parts: list[str], repeat: int) -> int:
    figures: list[Figure] = []
    for part in parts:
        print(f"measuring {part} ...", flush=True)
        figures += MEASURES[part](repeat)
    print(render(figures))
    return 0 if all(figure.meets for figure in figures) else BELOW_GOAL


if __name__ == "__main__":
    sys.exit(main())
