#!/usr/bin/env python3
"""Prototype (issue 16): /hello with wrk against bare, runc and gVisor containers, interleaved.

    scripts/prototypes/runsc_wrk.py [--rounds 5] [--seconds 5] [--setups bare,runc-host,runsc-host,...]

Each round starts every setup in turn (order rotated per round), waits for its first 200, warms
up with wrk for 2 s, measures with `taskset -c 0 wrk -t1 -c8 -dNs` (the app pinned to CPU 1),
reads /stats, sums the CPU time of the setup's host processes over the measured window, and
stops it. Prints one line per trial and the medians. Containers are named lb16-* and always
removed; the bare app is always killed. Setups whose runtime Docker does not list are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine_processes import container_processes, role_of  # noqa: E402

from bench.images.rootfs import PACKAGE_PARENT, app_argv  # noqa: E402

IMAGE_PYTHON = "/usr/local/bin/python3.11"
LOCKED_DOWN = ["--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "--read-only", "--tmpfs", "/tmp:size=64m"]
APP_CPU, LOAD_CPU = "1", "0"
# name -> (docker runtime or None for bare, network)
SETUPS = {"bare": (None, "host"), "runc-host": ("runc", "host"), "runsc-host": ("runsc", "host"),
          "runsc-bridge": ("runsc", "bridge"), "runsc-old-host": ("lb16-runsc-old", "host")}


OWN_REPOSITORY = "lb16/app"  # not layerbench/app: other checkouts prune those of other rootfs digests


def image_tag() -> str:
    """lb16/app:<rootfs digest>, imported from this checkout's rootfs like bench.images.docker_image does."""
    import tempfile

    from bench.images.docker_image import _image_changes, write_tarball
    from bench.images.rootfs import build_rootfs

    rootfs = build_rootfs()
    tag = f"{OWN_REPOSITORY}:{rootfs.digest[:16]}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="lb16-image-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        write_tarball(rootfs.path, tarball)
        changes = [arg for change in _image_changes(rootfs) for arg in ("--change", change)]
        subprocess.run(["docker", "import", *changes, str(tarball), tag], check=True, capture_output=True)
    return tag


def docker_runtimes() -> set[str]:
    out = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out))


class Trial:
    """One started setup: its port, how to find its host processes, how to stop it."""

    def __init__(self, name: str, port: int, image: str):
        self.name, self.port, self.image = name, port, image
        self.popen: subprocess.Popen | None = None
        self.container = f"lb16-{name}-{port}"
        self.startup_s = 0.0

    def start(self) -> None:
        name, port, image = self.name, self.port, self.image
        runtime, network = SETUPS[name]
        began = time.perf_counter()
        if runtime is None:
            command = ["taskset", "-c", APP_CPU, *app_argv(sys.executable, "127.0.0.1", port, str(PACKAGE_PARENT))]
            self.popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            where = ["--network", "host"] if network == "host" else ["-p", f"127.0.0.1:{port}:8080"]
            listen = ("127.0.0.1", port) if network == "host" else ("0.0.0.0", 8080)
            # The image's "layerbench" label is inherited: the runner-pid label tells `bench clean` it is live.
            subprocess.run(["docker", "run", "-d", "--name", self.container, "--label", "lb16=1",
                            "--label", f"layerbench.runner-pid={os.getpid()}",
                            f"--runtime={runtime}", *where, "--cpuset-cpus", APP_CPU, *LOCKED_DOWN, image,
                            *app_argv(IMAGE_PYTHON, *listen)], check=True, capture_output=True, text=True)
        self.startup_s = wait_ok(port, began)

    def processes(self) -> list[psutil.Process]:
        if self.popen is not None:
            return [psutil.Process(self.popen.pid)]
        out = subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{.State.Pid}}", self.container],
                             capture_output=True, text=True, check=True).stdout.split()
        return container_processes(out[0], int(out[1]))

    def stop(self) -> None:
        if SETUPS[self.name][0] is None:
            if self.popen is None:
                return
            self.popen.kill()
            self.popen.wait()
        else:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True, check=False)


def wait_ok(port: int, began: float, deadline_s: float = 30.0) -> float:
    while time.perf_counter() - began < deadline_s:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
                if reply.status == 200:
                    return time.perf_counter() - began
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"no 200 on port {port} within {deadline_s} s")


def wrk(port: int, seconds: int) -> float:
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c8", f"-d{seconds}s",
                          f"http://127.0.0.1:{port}/hello"], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def cpu_by_role(processes: list[psutil.Process]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for process in processes:
        try:
            times = process.cpu_times()
            role = role_of(process, 0)
        except psutil.Error:
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def run_trial(name: str, port: int, image: str, seconds: int) -> dict:
    trial = Trial(name, port, image)
    try:
        trial.start()
        wrk(port, 2)  # warm-up
        processes = trial.processes()
        before = cpu_by_role(processes)
        rps = wrk(port, seconds)
        after = cpu_by_role(processes)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as reply:
            kernel = json.load(reply).get("kernel")
        requests = rps * seconds
        cpu_us = {role: (after[role] - before.get(role, 0.0)) / requests * 1e6 for role in after}
        return {"setup": name, "rps": rps, "startup_s": trial.startup_s, "kernel": kernel, "cpu_us_per_req": cpu_us,
                "load1": os.getloadavg()[0]}  # the host is shared: how busy it was
    finally:
        trial.stop()


def _median_cpu(results: list[dict]) -> str:
    roles = sorted({role for r in results for role in r["cpu_us_per_req"]})
    medians = {role: statistics.median(r["cpu_us_per_req"].get(role, 0.0) for r in results) for role in roles}
    total = statistics.median(sum(r["cpu_us_per_req"].values()) for r in results)
    return " ".join(f"{role}={value:.0f}" for role, value in medians.items()) + f" total={total:.0f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args(argv)
    image, runtimes = image_tag(), docker_runtimes()
    names = [n for n in args.setups.split(",") if SETUPS[n][0] is None or SETUPS[n][0] in runtimes]
    print(f"image {image}; setups {names}; skipped {sorted(set(args.setups.split(',')) - set(names))}")
    results: list[dict] = []
    port = 18940
    for round_number in range(args.rounds):
        order = names[round_number % len(names):] + names[:round_number % len(names)]
        for name in order:
            port += 1
            result = run_trial(name, port, image, args.seconds)
            results.append(result)
            cpu = " ".join(f"{role}={value:.0f}" for role, value in sorted(result["cpu_us_per_req"].items()))
            print(f"round {round_number} {name:<15} {result['rps']:8.0f} req/s  startup {result['startup_s']:.3f} s  "
                  f"kernel {result['kernel']}  cpu us/req {cpu}  load1 {result['load1']:.1f}", flush=True)
    bare = statistics.median(r["rps"] for r in results if r["setup"] == "bare") if "bare" in names else None
    print("medians:")
    for name in names:
        mine = [r for r in results if r["setup"] == name]
        rps = statistics.median(r["rps"] for r in mine)
        ratio = f"  ratio to bare {rps / bare:.3f}" if bare else ""
        print(f"  {name:<15} {rps:8.0f} req/s{ratio}  startup {statistics.median(r['startup_s'] for r in mine):.3f} s"
              f"  (n={len(mine)}, min {min(r['rps'] for r in mine):.0f}, max {max(r['rps'] for r in mine):.0f})"
              f"  cpu us/req {_median_cpu(mine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
