"""Adapter for wrk, the industry-standard HTTP load generator, so any figure can be checked
against it (`load: wrk` in a scenario workload).

wrk keeps its latencies in a histogram; a Lua `done()` hook prints 1000 quantiles of it as JSON,
which stand in for the raw latencies (the trial's notes say so). wrk is closed-loop only.

wrk sends the headers the built-in generator sends (User-Agent, a trace id: bench.load.spec), so
the app does the same work for a request from either and the two measure the same thing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from bench.load.cpu_clock import Clock, elapsed, process_clock
from bench.load.spec import TRACE_HEADER, USER_AGENT, WRK_TRACE_ID, LoadResult, LoadSpec, busy_fraction
from bench.scratch import owned_temporary

_POLL_S = 0.05  # how often wrk's scheduler statistics are read while it runs

QUANTILES = 1000

# wrk calls done() once with its merged statistics; latency is in microseconds.
_LUA = """
wrk.headers["User-Agent"] = "%s"
wrk.headers["%s"] = "%s"
done = function(summary, latency, requests)
  local q = {}
  for i = 1, %d do q[i] = latency:percentile(100.0 * (i - 0.5) / %d) end
  local e = summary.errors
  io.write("LAYERBENCH_JSON " .. string.format(
    '{"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, ' ..
    '"timeout": %%d, "quantiles_us": [%%s]}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(q, ",")) .. "\\n")
end
""" % (USER_AGENT, TRACE_HEADER, WRK_TRACE_ID, QUANTILES, QUANTILES)


def available() -> str | None:
    """None when wrk is installed; else the fix."""
    return None if shutil.which("wrk") else "wrk is not installed (apt-get install wrk)"


def _command(port: int, spec: LoadSpec, seconds: float, cpus: tuple[int, ...], script: Path) -> list[str]:
    command = ["wrk", "-t1", f"-c{spec.connections}", f"-d{max(1, round(seconds))}s",
               f"--timeout={max(1, round(spec.timeout_s))}s", "-s", str(script),
               f"http://{spec.host}:{port}{spec.path}"]
    if shutil.which("taskset") and cpus:
        command = ["taskset", "-c", ",".join(map(str, cpus))] + command
    return command


def _run_measured(command: list[str], folder: Path, timeout_s: float) -> tuple[int, str, str, Clock | None]:
    """Run wrk, returning (exit code, stdout, stderr, its CPU over the run).

    CPU comes from wait4's rusage (exact, all of wrk's threads); the run-queue wait from wrk's
    schedstat, read until just before it exits (the last poll interval is missed)."""
    out, err = folder / "stdout", folder / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    try:
        first = last = process_clock(process.pid)
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"wrk did not finish within {timeout_s:.0f} s")
            last = process_clock(process.pid) or last
            time.sleep(_POLL_S)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
    wait_s = elapsed(first, last).wait_s if first and last else None
    cpu = Clock(usage.ru_utime + usage.ru_stime, wait_s)
    return process.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"), cpu


def run_wrk(port: int, spec: LoadSpec, cpus: tuple[int, ...] = ()) -> LoadResult:
    """Run wrk against http://spec.host:port (warm-up run, then the measured run)."""
    reason = available()
    if reason:
        raise RuntimeError(reason)
    if spec.mode != "closed":
        raise ValueError("wrk runs closed loop only; use the built-in generator for mode 'open'")
    with owned_temporary("wrk") as folder:  # named after this runner: bench clean removes it once killed
        script = folder / "report.lua"
        script.write_text(_LUA)
        if spec.warmup_s > 0:
            subprocess.run(_command(port, spec, spec.warmup_s, cpus, script), capture_output=True, timeout=600)
        window_start = time.monotonic()
        returncode, stdout, stderr, cpu = _run_measured(_command(port, spec, spec.duration_s, cpus, script),
                                                        folder, spec.duration_s + 120)
        window_end = time.monotonic()
    line = next((l for l in stdout.splitlines() if l.startswith("LAYERBENCH_JSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {returncode}): {stderr.strip()[:200]}")
    return _result(json.loads(line.removeprefix("LAYERBENCH_JSON ")), (window_start, window_end), cpu)


def _result(data: dict, window: tuple[float, float], cpu: Clock) -> LoadResult:
    errors = {kind: data[kind] for kind in ("connect", "read", "write", "status", "timeout") if data[kind]}
    duration_s = data["duration_us"] / 1e6
    # Non-2xx replies are counted by wrk as "status" errors but also as requests.
    completed = data["requests"] - data["status"]
    return LoadResult(requests=completed, errors=errors, duration_s=duration_s,
                      latency_ms=np.array(data["quantiles_us"], dtype=float) / 1000.0, app_ms=np.array([]),
                      window=window, sent=data["requests"], generator="wrk",
                      notes={"latency_ms": f"{QUANTILES} quantiles of wrk's histogram, not raw latencies",
                             "warmup": "a separate wrk run", "requests_include_warmup": False,
                             "generator_cpu": "wrk's whole measured run (start-up included), one thread (-t1)"},
                      generator_processes=1, generator_cpu_s=cpu.cpu_s, generator_wait_s=cpu.wait_s,
                      generator_busy_fraction=busy_fraction(cpu.cpu_s, duration_s, 1))
