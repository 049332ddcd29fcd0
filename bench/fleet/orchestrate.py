"""A fleet run: one scenario on several hosts in parallel, each run folder brought home into one
fleet folder (bench.fleet.record). A host's failure (unreachable, killed, a non-zero exit) is
recorded against that host; the others go on and keep their results.

Each host runs `bench remote-run` (bench.fleet.worker) and streams JSON lines back; this module
turns them into progress events with the host's name, answers a split run's load requests with
the load host's generator, and fetches the run folder when the host is done.
"""

from __future__ import annotations

import collections
import json
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bench.errors import ExitStatus, Interrupted, LayerbenchError
from bench.events import Event, ProgressFn, no_progress
from bench.fleet.hostsfile import HostEntry
from bench.fleet.record import FINISHED, HostOutcome, new_fleet, save_fleet
from bench.fleet.remote import LocalPlace, RemotePlace
from bench.fleet.ssh import RemoteError, SshSession
from bench.fleet.wheel import Wheel, build_wheel
from bench.load.wire import result_to_dict, spec_from_dict
from bench.results import new_run_id, now_iso

STOP_WAIT_S = 90  # after Ctrl-C: how long the hosts get to stop their setups and say so
EXIT_WORDS = {int(ExitStatus.OK): "complete", int(ExitStatus.INCOMPLETE): "incomplete",
              int(ExitStatus.INTERRUPTED): "interrupted"}


class HostRun:
    """One host's part: prepare, run (streaming, relaying load), fetch. Runs in its own thread."""

    def __init__(self, fleet: "FleetRun", entry: HostEntry, place):
        self.fleet, self.entry, self.place, self.name = fleet, entry, place, entry.name
        self.process: subprocess.Popen | None = None
        self.remote_pid: int | None = None
        self.result: dict = {}
        self.returncode: int | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.split: Future | None = None  # a split run's target waits for its load host
        self.relay = None
        self.listen_address: str | None = None
        self.finished = threading.Event()  # not Thread.join: an interrupted join can mark a live thread stopped

    def __call__(self) -> None:
        try:
            self._prepare()
            job = self._job()
            self._run(job)
            self._bring_home()
        except (LayerbenchError, OSError, subprocess.SubprocessError) as error:
            self.fleet.update(self.name, status="failed", error=str(error), finished_at=now_iso())
            self.fleet.say(self.name, f"failed: {error}")
        except Exception as error:  # one host's surprise must not lose the others' results
            self.fleet.update(self.name, status="failed", error=f"{type(error).__name__}: {error}",
                              finished_at=now_iso())
        finally:
            self.finished.set()

    def _prepare(self) -> None:
        self.fleet.update(self.name, status="preparing", started_at=now_iso(), target=self.entry.target)
        self.fleet.say(self.name, f"reaching {self.entry.target}")
        done = self.place.prepare(self.fleet.wheel() if isinstance(self.place, RemotePlace) else None,
                                  lambda message: self.fleet.say(self.name, message))
        self.fleet.update(self.name, installed=done)
        self.fleet.say(self.name, done)

    def _job(self) -> dict:
        job = {"scenario": self.fleet.scenario.model_dump(mode="json"), "command_line": self.fleet.command_line}
        if self.split is not None:
            extra, self.relay = self.split.result()  # raises the load host's failure: this target fails with it
            self.listen_address = extra["listen_address"]
            job.update(extra)
        return job

    def _run(self, job: dict) -> None:
        if self.fleet.cancelled.is_set():
            raise Interrupted("interrupted before it started")
        self.process = self.place.start(self.fleet.fleet_id, job)
        self.fleet.update(self.name, status="running")
        reader = threading.Thread(target=self._read_stderr, name=f"fleet-{self.name}-stderr", daemon=True)
        reader.start()
        try:
            for raw in self.process.stdout:
                self._handle(raw)
            self.returncode = self.process.wait()
            reader.join(timeout=5)
        finally:
            for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
                pipe.close()

    def _read_stderr(self) -> None:
        try:
            for raw in self.process.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self.stderr_tail.append(line)
                    self.fleet.emit(Event("log", line, data={"host": self.name}))
        except (ValueError, OSError):  # closed under us: the host's run is over
            pass

    def _handle(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            kind = message.get("kind")
        except (ValueError, AttributeError):
            self.fleet.emit(Event("log", raw.decode(errors="replace").rstrip(), data={"host": self.name}))
            return
        if kind == "hello":
            self.remote_pid = int(message.get("pid") or 0) or None
        elif kind == "event":
            event = message.get("event") or {}
            self.fleet.emit(Event(str(event.get("kind")), str(event.get("message")), int(event.get("done") or 0),
                                  int(event.get("total") or 0), {**(event.get("data") or {}), "host": self.name}))
        elif kind == "load_request":
            self._answer(message)
        elif kind == "result":
            self.result = message

    def _answer(self, request: dict) -> None:
        """Run the target's load on the load host and send the result back on its stdin."""
        try:
            spec = spec_from_dict(request.get("spec"))
            if self.relay is None or spec.host != self.listen_address:  # load goes only to the split address
                raise RuntimeError(f"refused a load request for {spec.host}: not this split run's address")
            result = self.relay.run_spec(int(request["port"]), spec, str(request.get("generator") or "builtin"))
            reply = {"kind": "load_result", "result": result_to_dict(result)}
        except Exception as error:  # the trial fails with this message; the run goes on
            reply = {"kind": "load_error", "message": str(error) or type(error).__name__}
        try:
            self.process.stdin.write(json.dumps(reply).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the host is gone; its stream ends and the failure is recorded there

    def _bring_home(self) -> None:
        if self.place.lost(self.returncode):
            raise RemoteError(f"{self.name} ({self.entry.target}): the connection was lost mid-run (host "
                              f"unreachable or killed){': ' + self.stderr_tail[-1] if self.stderr_tail else ''}")
        run_id = self.result.get("run_id")
        if not run_id:
            said = self.stderr_tail[-1] if self.stderr_tail else "no message"
            raise RemoteError(f"{self.name}: bench remote-run exited {self.returncode}: {said}")
        self.fleet.update(self.name, status="fetching", run_id=run_id)
        self.place.fetch(self.fleet.fleet_id, run_id, self.fleet.fleet_dir / self.name)
        self.place.forget(self.fleet.fleet_id)
        status = EXIT_WORDS.get(self.returncode, "incomplete")
        error = None if status == "complete" else (f"{self.result.get('failed_trials')} trial(s) failed"
                                                   if status == "incomplete" else "interrupted")
        self.fleet.update(self.name, status=status, run_dir=self.name, error=error, finished_at=now_iso())
        self.fleet.say(self.name, f"{status}: run folder fetched ({run_id})")

    def stop(self) -> None:
        """Ask the host's runner to stop like Ctrl-C (it removes what it started)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            if self.remote_pid:
                self.place.stop(self.remote_pid)
            else:
                self.process.terminate()
        except (LayerbenchError, OSError, subprocess.SubprocessError):
            self.process.terminate()


class FleetRun:
    """The state of one fleet run; `run()` returns the fleet folder."""

    def __init__(self, scenario, entries: list[HostEntry], out: Path, progress: ProgressFn = no_progress,
                 command_line: list[str] | None = None, load_from: HostEntry | None = None):
        self.scenario, self.entries, self.load_from = scenario, entries, load_from
        self.command_line = command_line or []
        self.progress = progress
        self.fleet_id = new_run_id(f"{scenario.name}-fleet")
        self.fleet_dir = Path(out) / self.fleet_id
        hosts = [HostOutcome(name=entry.name, target=entry.target) for entry in entries]
        if load_from is not None:
            hosts.append(HostOutcome(name=load_from.name, target=load_from.target, role="load"))
        self.record = new_fleet(self.fleet_id, scenario.model_dump(mode="json"), self.command_line, hosts)
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._wheel: Wheel | None = None
        self.session: SshSession | None = None

    def emit(self, event: Event) -> None:
        with self._lock:
            self.progress(event)

    def say(self, host: str, message: str) -> None:
        self.emit(Event("host", message, data={"host": host}))

    def update(self, host: str, **fields) -> None:
        with self._lock:
            outcome = self.record.host(host)
            for key, value in fields.items():
                setattr(outcome, key, value)
            save_fleet(self.fleet_dir, self.record)

    def set_split(self, split: dict) -> None:
        with self._lock:
            self.record.split = split
            save_fleet(self.fleet_dir, self.record)

    def wheel(self) -> Wheel:
        with self._lock:
            if self._wheel is None:
                self._wheel = build_wheel()
            return self._wheel

    def place(self, entry: HostEntry):
        if entry.is_local:
            return LocalPlace(entry, self.fleet_dir / f".work-{entry.name}")
        return RemotePlace(self.session.to(entry))

    def run(self) -> Path:
        from bench.runner import sigterm_as_interrupt

        self.fleet_dir.mkdir(parents=True, exist_ok=False)
        save_fleet(self.fleet_dir, self.record)
        self.emit(Event("start", f"fleet {self.fleet_id} -> {self.fleet_dir}", data={"run_dir": str(self.fleet_dir)}))
        with SshSession() as session, sigterm_as_interrupt(), ThreadPoolExecutor(max_workers=2) as pool:
            self.session = session
            runs = [HostRun(self, entry, self.place(entry)) for entry in self.entries]
            if self.load_from is not None:
                from bench.fleet.splitrun import prepare_split

                runs[0].split = pool.submit(prepare_split, self, runs[0])
            self._in_parallel(runs)
        return self._finish()

    def _in_parallel(self, runs: list[HostRun]) -> None:
        threads = [threading.Thread(target=run, name=f"fleet-{run.name}", daemon=True) for run in runs]
        for thread in threads:
            thread.start()
        try:
            for run in runs:
                while not run.finished.wait(timeout=0.2):
                    pass
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (RunInterrupted): every host stops its setups
            self.cancelled.set()
            self.emit(Event("skip", "interrupted: asking every host to stop and clean up"))
            for run in runs:
                run.stop()
            deadline = time.monotonic() + STOP_WAIT_S
            for run in runs:
                run.finished.wait(timeout=max(0.1, deadline - time.monotonic()))
            self._finish(interrupted=True)
            raise Interrupted(f"interrupted; what the hosts measured so far is in {self.fleet_dir}") from None

    def _finish(self, interrupted: bool = False) -> Path:
        with self._lock:
            for outcome in self.record.hosts:
                if outcome.status not in FINISHED:
                    outcome.status = "interrupted" if interrupted else "failed"
                    outcome.error = outcome.error or ("interrupted" if interrupted else "did not finish")
            targets = self.record.targets
            self.record.status = "complete" if all(o.status == "complete" for o in targets) else "incomplete"
            self.record.finished_at = now_iso()
            save_fleet(self.fleet_dir, self.record)
        self.emit(Event("done", f"fleet {self.fleet_id}: " + ", ".join(f"{o.name} {o.status}" for o in targets),
                        data={"run_dir": str(self.fleet_dir)}))
        return self.fleet_dir


def run_fleet(scenario, entries: list[HostEntry], out: Path, progress: ProgressFn = no_progress,
              command_line: list[str] | None = None, load_from: HostEntry | None = None) -> Path:
    """Run `scenario` on every host in parallel (the first against `load_from`'s load, when given)."""
    return FleetRun(scenario, entries, out, progress, command_line, load_from).run()
