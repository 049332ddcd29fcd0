#!/usr/bin/env python3
"""Prototype (issue 16): boot the VM with the app in a runc or crun container inside it, against the VM alone.

    scripts/prototypes/vm_runc_boot.py [--rounds 3] [--seconds 5] [--runtimes runc,crun] [--verbose]

Builds initramfs from the same rootfs and kernel (the default one, and one per runtime with the
runtime, its libraries and an OCI bundle: bench.images.guest_runtime), boots each under QEMU
microvm/TCG pinned to CPU 1 (interleaved, the order rotated every round), waits for the first 200 on /health through the
127.0.0.1 port forward, prints the start-up phases from the serial console's markers, drives
/hello with the built-in generator for --seconds, reads /stats and QEMU's RSS, and quits QEMU.
QEMU is always killed (finally, SIGTERM/SIGINT, and PR_SET_PDEATHSIG if this process dies).
--verbose puts layerbench.verbose on the kernel command line: the container init prints /proc/cgroups.

The QEMU command line is a copy of bench/setups/vm.py's _BootPlan.command (microvm, PVH vmlinux,
-cpu max under TCG, tsc_early_khz), trimmed to what this needs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.images import guest_runtime  # noqa: E402
from bench.images import initramfs as initramfs_module  # noqa: E402
from bench.images.kernel import find_kernel, pvh_vmlinux  # noqa: E402
from bench.images.rootfs import build_rootfs  # noqa: E402
from bench.load.builtin import LoadSpec, run_load  # noqa: E402

APP_PORT_IN_GUEST = 8080
APP_CPU, LOAD_CPU = 1, 0
MEMORY_MB = 256
MARKERS = (initramfs_module.MARKER_INIT, initramfs_module.MARKER_NETWORK, guest_runtime.MARKER_CGROUP,
           guest_runtime.MARKER_CREATE, guest_runtime.MARKER_START, initramfs_module.MARKER_APP)


def tsc_khz() -> int | None:
    kernel_log = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    found = re.findall(r"tsc: (?:Refined TSC clocksource calibration|Detected) ([\d.]+) MHz", kernel_log)
    if not found:  # the kernel log rotated: /proc/cpuinfo, as bench/setups/vm.py falls back to
        found = re.findall(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return int(float(found[-1]) * 1000) if found else None


def qemu_command(vmlinux: Path, initrd: Path, port: int, temp_dir: Path, verbose: bool) -> list[str]:
    append = ["console=ttyS0", "quiet", "panic=-1", "random.trust_cpu=on", "pci=off"]
    if (khz := tsc_khz()) is not None:
        append += [f"tsc_early_khz={khz}", "tsc=reliable"]
    if verbose:
        append.append(guest_runtime.VERBOSE_CMDLINE)
    return ["taskset", "-c", str(APP_CPU), "qemu-system-x86_64", "-name", f"lb16-vm-runc-{os.getpid()}-{port}",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-machine", "microvm",
            "-accel", "tcg,tb-size=32", "-cpu", "max", "-m", str(MEMORY_MB), "-smp", "1",
            "-kernel", str(vmlinux), "-initrd", str(initrd), "-append", " ".join(append),
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:{APP_PORT_IN_GUEST}",
            "-device", "virtio-net-device,netdev=net0", "-pidfile", str(temp_dir / "qemu.pid")]


def die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Boot:
    """One QEMU: its console lines stamped with host time (seconds since spawn)."""

    def __init__(self, command: list[str]):
        self.began = time.perf_counter()
        self.popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        for raw in self.popen.stdout:  # type: ignore[union-attr]
            self.lines.append((time.perf_counter() - self.began, raw.decode(errors="replace").rstrip()))

    def seen(self, marker: str) -> float | None:
        return next((at for at, line in list(self.lines) if line.startswith(marker)), None)

    def wait_for_200(self, port: int, deadline_s: float = 120.0) -> float:
        while time.perf_counter() - self.began < deadline_s:
            if self.popen.poll() is not None:
                raise RuntimeError("QEMU exited: " + " | ".join(line for _, line in self.lines[-15:]))
            if self.seen(initramfs_module.MARKER_APP) is not None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                        if reply.status == 200:
                            return time.perf_counter() - self.began
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("no 200 within the deadline: " + " | ".join(line for _, line in self.lines[-15:]))

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self.reader.join(timeout=2)


def one_boot(kind: str, image: Path, vmlinux: Path, seconds: float, verbose: bool) -> dict:
    from bench.netutil import free_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lb16-vm-") as temp:
        boot = Boot(qemu_command(vmlinux, image, port, Path(temp), verbose))
        try:
            first_200_s = boot.wait_for_200(port)
            phases = {marker.removeprefix("layerbench: "): boot.seen(marker) for marker in MARKERS}
            qemu = psutil.Process(boot.popen.pid)  # taskset execs QEMU in place: the same pid
            rss_booted = qemu.memory_info().rss
            # QEMU's CPU time to the first 200: what neighbours on a shared host disturb far less than wall time
            cpu_to_200_s = sum(qemu.cpu_times()[:2])
            spec = LoadSpec(path="/hello", connections=8, duration_s=seconds, warmup_s=1.0)
            cpu_before = sum(qemu.cpu_times()[:2])
            result = run_load(port, spec)
            # QEMU's CPU over warm-up + window, per request served in the window (rate x total time)
            cpu_us_per_request = (sum(qemu.cpu_times()[:2]) - cpu_before) * 1e6 / max(
                1.0, result.throughput_rps * (spec.duration_s + spec.warmup_s))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as reply:
                stats = json.load(reply)
            endpoints = {}
            for path in ("/io", "/cpu", "/json"):  # /io writes in the container's tmpfs /tmp
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as reply:
                    endpoints[path] = reply.status
            return {"kind": kind, "first_200_s": first_200_s, "phases": phases, "rps": result.throughput_rps,
                    "errors": result.errors, "qemu_rss_booted": rss_booted, "cpu_to_200_s": cpu_to_200_s,
                    "cpu_us_per_request": cpu_us_per_request,
                    "qemu_rss_after": qemu.memory_info().rss,
                    "stats": stats, "endpoints": endpoints, "console": [line for _, line in boot.lines]}
        finally:
            boot.kill()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--runtimes", default="runc,crun", help="container runtimes in the guest, besides the VM alone")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM unwinds like Ctrl-C: finally kills QEMU
    os.sched_setaffinity(0, {LOAD_CPU})  # the load generator (this process) on CPU 0, QEMU on CPU 1
    for tool in ("qemu-system-x86_64", "taskset", "busybox", "lz4"):
        if shutil.which(tool) is None:
            print(f"missing: {tool}")
            return 1
    rootfs = build_rootfs(progress=print)
    kernel = find_kernel(progress=print)
    vmlinux = pvh_vmlinux(kernel)
    if vmlinux is None:
        print("no PVH vmlinux for the cached kernel")
        return 1
    images = {}
    wanted = [runtime for runtime in args.runtimes.split(",") if runtime]
    for kind, runtime in [("vm", None), *((f"vm+{runtime}", runtime) for runtime in wanted)]:
        began = time.perf_counter()
        built = initramfs_module.build_initramfs(rootfs, kernel, port=APP_PORT_IN_GUEST, progress=print,
                                                 container_runtime=runtime)
        images[kind] = built.path
        print(f"{kind}: initramfs {built.path.name} {built.size_bytes / 2**20:.1f} MiB ({built.compression}), "
              f"ready in {time.perf_counter() - began:.1f} s")
    results = []
    for round_number in range(args.rounds):
        kinds = list(images)
        order = kinds[round_number % len(kinds):] + kinds[:round_number % len(kinds)]
        for kind in order:
            result = one_boot(kind, images[kind], vmlinux, args.seconds, args.verbose)
            results.append(result)
            print_boot(round_number, result, show_console=args.verbose and round_number == 0)
    print_medians(results)
    return 0


def print_boot(round_number: int, result: dict, show_console: bool) -> None:
    phases = "  ".join(f"{name}={at:.2f}" for name, at in result["phases"].items() if at is not None)
    stats = result["stats"]
    print(f"round {round_number} {result['kind']:<8} first_200 {result['first_200_s']:.2f} s  "
          f"qemu cpu to 200 {result['cpu_to_200_s']:.2f} s  {result['rps']:7.0f} req/s "
          f"qemu cpu {result['cpu_us_per_request']:.0f} us/req "
          f"errors {sum(result['errors'].values())}  qemu rss booted {result['qemu_rss_booted'] / 2**20:.0f} MiB "
          f"after load {result['qemu_rss_after'] / 2**20:.0f} MiB  app: pid {stats['pid']} ppid {stats['ppid']} "
          f"uid {stats['uid']} rss {stats['rss_bytes'] / 2**20:.1f} MiB kernel {stats['kernel']} "
          f"hostname {stats['hostname']} cgroup {stats.get('cgroup')} endpoints {result['endpoints']}", flush=True)
    print(f"    phases (s since QEMU spawn): {phases}")
    if show_console:
        print("    console:\n" + "\n".join(f"      | {line}" for line in result["console"]))


def print_medians(results: list[dict]) -> None:
    print("medians:")
    kinds = sorted({r["kind"] for r in results})
    base = statistics.median(r["rps"] for r in results if r["kind"] == "vm")
    for kind in kinds:
        mine = [r for r in results if r["kind"] == kind]
        rps = statistics.median(r["rps"] for r in mine)
        print(f"  {kind:<8} {rps:7.0f} req/s (ratio to vm {rps / base:.3f}, n={len(mine)}, "
              f"min {min(r['rps'] for r in mine):.0f}, max {max(r['rps'] for r in mine):.0f})  "
              f"first_200 {statistics.median(r['first_200_s'] for r in mine):.2f} s  "
              f"qemu cpu to 200 {statistics.median(r['cpu_to_200_s'] for r in mine):.2f} s  "
              f"qemu cpu {statistics.median(r['cpu_us_per_request'] for r in mine):.0f} us/req  "
              f"qemu rss after load {statistics.median(r['qemu_rss_after'] for r in mine) / 2**20:.0f} MiB")
        for marker in MARKERS:
            name = marker.removeprefix("layerbench: ")
            values = [r["phases"][name] for r in mine if r["phases"].get(name) is not None]
            if values:
                print(f"      {name:<26} {statistics.median(values):.2f} s")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
