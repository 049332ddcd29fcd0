"""`bench remote-run JOB --out DIR`: what a fleet runs on each host (this machine included).

It runs the job's scenario with the ordinary Runner (same pinning, same statistics) and talks to
the control host in JSON lines on stdout, one object each:

    {"kind": "hello", "pid": ..., "version": ...}          first, so the control can stop it
    {"kind": "event", "event": {"kind": ..., "message": ..., ...}}   the runner's progress (bench.event_wire)
    {"kind": "load_request", "port": ..., "spec": {...}, "generator": ...}   split runs only
    {"kind": "result", "run_id": ..., "run_dir": ..., "status": ..., "failed_trials": N, "error": why or null}

Started by the fleet's playbook, its stdout is a file the playbook's watches read (with
`--watchdog`); on this machine and for a split run's target it is a pipe to the control host.
The worker writes its pid to `worker.pid` in its folder, and stops itself like Ctrl-C (removing
what it started) when the file `stop` appears there (the playbook's way to stop it); with
`--watchdog` also when nobody has touched `heartbeat` there for HEARTBEAT_TIMEOUT_S: the control
host was killed or lost, and nobody would ever fetch this run.

In a split run the load comes from another host, which this host cannot reach on its own (no
keys are ever copied to it): the runner's load function asks the control host on stdout, and
the control host answers on stdin with {"kind": "load_result", "result": {...}} (bench.load.wire)
or {"kind": "load_error", "message": ...}.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path

import bench
from bench.errors import ExitStatus, ScenarioError
from bench.event_wire import to_json
from bench.events import Event, Planned, RunInterrupted, TrialEnded
from bench.load.spec import LoadResult
from bench.load.wire import result_from_dict, spec_to_dict
from bench.netutil import LOOPBACK
from bench.outcome import why_empty

JOB_KEYS = ("scenario", "command_line", "listen_address", "relay_load", "split")
HEARTBEAT_TIMEOUT_S = 60  # the playbook looks every few seconds (bench.fleet.engine.WAIT_S)
WATCH_EVERY_S = 1.0


class Emitter:
    """One JSON object per stdout line; a control host that went away stops the run like Ctrl-C."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, message: dict) -> None:
        line = json.dumps(message, default=str, allow_nan=False) + "\n"
        with self.lock:
            try:
                self.out.write(line)
                self.out.flush()
            except (BrokenPipeError, ValueError):  # ValueError: stdout already closed
                raise RunInterrupted("the control host went away") from None

    def event(self, event: Event) -> None:
        if isinstance(event, Planned):  # the live view's countdown data: the control host shows bars of its own
            return
        if isinstance(event, TrialEnded):
            event = dataclasses.replace(event, record=None)  # the record stays in run.json, fetched at the end
        self({"kind": "event", "event": to_json(event)})


class RelayedLoad:
    """A LoadFn for a split run on a host: the control host runs the load on the load host."""

    def __init__(self, emit: Emitter, address: str, answers=None):
        self.emit = emit
        self.address = address
        self.answers = answers or sys.stdin

    def __call__(self, port: int, workload) -> LoadResult:
        from bench.runner import load_spec

        spec = load_spec(workload, host=self.address)
        self.emit({"kind": "load_request", "port": port, "spec": spec_to_dict(spec), "generator": workload.load})
        line = self.answers.readline()
        if not line:
            raise RunInterrupted("the control host went away before the load finished")
        reply = json.loads(line)
        if reply.get("kind") != "load_result":
            raise RuntimeError(str(reply.get("message") or "the load host gave no result"))
        return result_from_dict(reply["result"])


def watchdog(folder: Path, stopped: threading.Event, timeout_s: float | None = HEARTBEAT_TIMEOUT_S) -> None:
    """Until `stopped`: SIGTERM to this process (a clean stop) on folder/stop, or a stale folder/heartbeat
    (timeout_s None: no heartbeat is kept)."""
    import signal
    import time

    began = time.time()
    while not stopped.wait(WATCH_EVERY_S):
        try:
            beat = (folder / "heartbeat").stat().st_mtime
        except OSError:
            beat = began  # not looked at yet
        stale = timeout_s is not None and time.time() - max(beat, began) > timeout_s
        if (folder / "stop").exists() or stale:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def read_job(path: Path) -> dict:
    """The job file the control host wrote (`-`: the first line of stdin); ScenarioError (one line)
    when it is not one."""
    from bench.scenario import Scenario

    try:
        job = json.loads(sys.stdin.readline() if str(path) == "-" else Path(path).read_text())
        if not isinstance(job, dict) or set(job) - set(JOB_KEYS):
            raise ValueError("unknown keys")
        job["scenario"] = Scenario.model_validate(job["scenario"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ScenarioError([f"{path}: not a layerbench job ({str(error)[:200]})"]) from None
    return job


def run_job(job_path: Path, out: Path, emit: Emitter | None = None, watched: bool = False) -> int:
    """Run the job; the exit status bench uses (0; 1 when nothing was measured; 3 when a trial failed;
    130 when interrupted)."""
    from bench.runner import Runner

    emit = emit or Emitter()
    job = read_job(job_path)
    stopped = threading.Event()
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "worker.pid").write_text(f"{os.getpid()}\n")
    threading.Thread(target=watchdog, args=(Path(out), stopped, HEARTBEAT_TIMEOUT_S if watched else None),
                     daemon=True, name="watchdog").start()
    emit({"kind": "hello", "pid": os.getpid(), "version": bench.__version__})
    address = job.get("listen_address") or LOOPBACK
    load = RelayedLoad(emit, address) if job.get("relay_load") else None
    runner = Runner(job["scenario"], out, emit.event, command_line=job.get("command_line") or sys.argv,
                    load=load, address=address, split=job.get("split") or None)
    status = ExitStatus.OK
    try:
        runner.run()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from the control host or the watchdog (RunInterrupted)
        status = ExitStatus.INTERRUPTED
    finally:
        stopped.set()
    failed, error = sum(trial.status == "failed" for trial in runner.record.trials), None
    if status == ExitStatus.OK and not runner.record.ok_trials():  # the host failed, saying why (bench.outcome)
        error, status = f"nothing measured: {why_empty(runner.record)}", ExitStatus.ERROR
        print(error, file=sys.stderr, flush=True)
    elif status == ExitStatus.OK and failed:
        status = ExitStatus.INCOMPLETE
    try:
        emit({"kind": "result", "run_id": runner.run_id, "run_dir": str(runner.run_dir),
              "status": runner.record.status, "failed_trials": failed, "error": error})
    except RunInterrupted:
        pass  # nobody is listening any more; the run folder is complete on disk
    return int(status)
