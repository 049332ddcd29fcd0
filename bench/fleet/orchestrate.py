"""A fleet run: one scenario on several hosts in parallel, each run folder brought home into one
fleet folder (bench.fleet.record). A host's failure (unreachable, killed, a non-zero exit) is
recorded against that host with Ansible's reason; the others go on and keep their results.

The inventory's hosts run through the playbook (bench.fleet.engine): install, run in the
background, watch, fetch, clean. This machine (`local`) runs `bench remote-run` as a child. Both
speak the worker's JSON lines (bench.fleet.worker), turned here into progress events that carry
the host's name. A split run (bench.fleet.split) drives its target over a direct ssh channel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from bench.errors import Interrupted
from bench.events import Event, HostChanged, ProgressFn, RunDone, RunStarted, Warned, no_progress
from bench.fleet.engine import WAIT_S, Listener, Outcome, Playbook, require_ansible
from bench.fleet.hostrun import HostRun
from bench.fleet.inventory import FleetHost
from bench.fleet.localdirs import LocalFolder
from bench.fleet.record import FINISHED, HostOutcome, new_fleet, save_fleet
from bench.records import Split
from bench.results import new_run_id, now_iso
from bench.runlock import RunLock

STOP_WAIT_S = 90  # after Ctrl-C: how long the hosts get to stop their setups and say so
# What a task of the playbook means for a host's state as it starts (False) or once it went well
# (True; a task skipped by its `when` says nothing), and the line shown then.
TASKS = {("probe", False): ("preparing", "reaching it"),
         ("copy the dependencies' wheels", True): ("preparing", "copied the dependencies' wheels (once per kind)"),
         ("install layerbench", True): ("preparing", "installed layerbench"),
         ("start the run", False): ("running", "starting the run"),
         ("fetch the run folder", False): ("fetching", "fetching its run folder"),
         ("ask the run to stop", False): ("running", "asking the run to stop")}


class FleetRun(Listener):
    """The state of one fleet run; `run()` returns the fleet folder."""

    def __init__(self, scenario, hosts: list[FleetHost], inventory, out: Path, progress: ProgressFn = no_progress,
                 command_line: list[str] | None = None, load_from: FleetHost | None = None):
        self.scenario, self.hosts, self.inventory, self.load_from = scenario, hosts, inventory, load_from
        self.command_line = command_line or []
        self.progress = progress
        self.fleet_id = new_run_id(f"{scenario.name}-fleet")
        self.fleet_dir = Path(out) / self.fleet_id
        outcomes = [HostOutcome(name=host.name, target=host.target) for host in hosts]
        if load_from is not None:
            outcomes.append(HostOutcome(name=load_from.name, target=load_from.target, role="load"))
        self.record = new_fleet(self.fleet_id, scenario.model_dump(mode="json"), self.command_line, outcomes)
        if inventory is not None:
            self.record.inventory = str(Path(inventory.path).resolve())
            self.record.inventory_named = inventory.explicit
        self.runs = {host.name: HostRun(self, host) for host in hosts}
        self.probes: dict[str, dict] = {}
        self.cancelled = threading.Event()
        self.playbooks: list[Playbook] = []
        self.folder: LocalFolder | None = None
        self._lock = threading.RLock()
        self._wheel = None

    # ---- what every part reports through ------------------------------------------------------
    def emit(self, event: Event) -> None:
        with self._lock:
            self.progress(event)

    def say(self, host: str, message: str) -> None:
        self.emit(HostChanged(message, host=host))

    def update(self, host: str, **fields) -> None:
        with self._lock:
            outcome = self.record.host(host)
            for key, value in fields.items():
                setattr(outcome, key, value)
            save_fleet(self.fleet_dir, self.record)

    def set_split(self, split: dict) -> None:
        with self._lock:
            self.record.split = Split.model_validate(split)
            save_fleet(self.fleet_dir, self.record)

    # ---- the playbook's events (bench.fleet.engine.Listener) ----------------------------------
    def task(self, host: str, name: str, done: bool) -> None:
        for (start, when_done), (status, words) in TASKS.items():
            if name.startswith(start) and done == when_done:
                if self.record.host(host).status not in FINISHED:
                    self.update(host, status=status, **({} if self.record.host(host).started_at else
                                                        {"started_at": now_iso()}))
                self.say(host, words)
                if start == "install layerbench":
                    self.update(host, installed=f"installed layerbench {self.wheel().version}")

    def probe(self, host: str, found: dict) -> None:
        self.probes[host] = found
        self.update(host, user=found.get("user"), python=found.get("python_full"))
        if found.get("installed") == self.wheel().version:
            self.update(host, installed=f"layerbench {found['installed']} already installed")

    def lines(self, host: str, lines: list[str]) -> None:
        run = self.runs.get(host)
        for line in lines:
            if run is not None:
                run.handle(line)

    # ---- the run --------------------------------------------------------------------------------
    def wheel(self):
        from bench.fleet.wheel import build_wheel

        with self._lock:
            if self._wheel is None:
                self._wheel = build_wheel()
            return self._wheel

    def playbook(self) -> Playbook:
        playbook = Playbook(self.inventory, self.folder, self)
        self.playbooks.append(playbook)
        return playbook

    def extravars(self, job: Path | None = None) -> dict:
        wheel = self.wheel()
        return {"lb_version": wheel.version, "lb_wheel": str(wheel.path), "lb_fleet_id": self.fleet_id,
                **({"lb_job": str(job)} if job else {})}

    def job(self, extra: dict | None = None) -> dict:
        return {"scenario": self.scenario.model_dump(mode="json"), "command_line": self.command_line, **(extra or {})}

    def run(self) -> Path:
        from bench.runner import sigterm_as_interrupt

        remote = [host for host in self.hosts if not host.is_local]
        if remote or (self.load_from is not None and not self.load_from.is_local):
            require_ansible()
        self.fleet_dir.mkdir(parents=True, exist_ok=False)
        with RunLock(self.fleet_dir), LocalFolder() as folder, sigterm_as_interrupt():
            self.folder = folder
            self.record.runner_pid = os.getpid()
            self.record.local_folder = str(folder.path)
            save_fleet(self.fleet_dir, self.record)
            self.emit(RunStarted(f"fleet {self.fleet_id} -> {self.fleet_dir}", run_dir=self.fleet_dir))
            parts = []
            if self.load_from is not None:
                from bench.fleet.split import run_split_target

                parts.append(lambda: run_split_target(self, self.hosts[0], self.load_from))
            else:
                if any(host.is_local for host in self.hosts):
                    parts.append(self.run_local)
                if remote:
                    parts.append(lambda: self._run_remote([host.name for host in remote]))
            self._in_parallel(parts)
            return self._finish()

    def _in_parallel(self, parts) -> None:
        done = [threading.Event() for _ in parts]

        def guarded(part, event):
            try:
                part()
            except Exception as error:  # one part's surprise must not lose the others' results
                for outcome in self.record.targets:
                    if outcome.status not in FINISHED:
                        self.update(outcome.name, status="failed", error=f"{type(error).__name__}: {error}")
            finally:
                event.set()

        for part, event in zip(parts, done):
            threading.Thread(target=guarded, args=(part, event), daemon=True, name="fleet-part").start()
        try:
            for event in done:
                while not event.wait(timeout=0.2):
                    pass
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (RunInterrupted): every host stops its setups
            self._stop(done)
            raise Interrupted(f"interrupted; what the hosts measured so far is in {self.fleet_dir}") from None

    def _stop(self, done: list[threading.Event]) -> None:
        self.cancelled.set()
        self.emit(Warned("interrupted: asking every host to stop and clean up"))
        for playbook in self.playbooks:
            playbook.cancelled.set()
        for run in self.runs.values():
            run.stop()
        deadline = time.monotonic() + STOP_WAIT_S
        for event in done:
            event.wait(timeout=max(0.1, deadline - time.monotonic()))
        started = [name for name, run in self.runs.items() if not run.host.is_local
                   and self.record.host(name).status in ("preparing", "running", "fetching")]
        if started:
            self.stop_remote(started)
        self._finish(interrupted=True)

    def stop_remote(self, names: list[str]) -> None:
        """Ask the runs on these hosts to stop, watch them end, fetch what they measured, clean up."""
        playbook = Playbook(self.inventory, self.folder, self)
        outcome = playbook.run(names, ["stop", "finish"], {**self.extravars(), "lb_stopping": True,
                                                           "lb_watch_retries": STOP_WAIT_S // WAIT_S})
        for name in names:
            self.bring_home(name, outcome, stopped=True)

    def run_local(self, extra: dict | None = None) -> None:
        """This machine: `bench remote-run` as a child of this interpreter, its lines on a pipe."""
        run = self.runs["local"]
        workdir = self.fleet_dir / ".work-local"
        workdir.mkdir()
        (workdir / "job.json").write_text(json.dumps(self.job(extra)))
        self.update("local", status="running", started_at=now_iso(), installed="this machine: runs from this checkout")
        try:
            run.stream(subprocess.Popen([sys.executable, "-m", "bench", "remote-run", str(workdir / "job.json"),
                                         "--out", str(workdir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
            run_id = run.result.get("run_id")
            status, error = run.ended()
            if run_id and (workdir / run_id).is_dir():
                (workdir / run_id).rename(self.fleet_dir / "local")
                self.update("local", status=status, error=error, run_id=run_id, run_dir="local", finished_at=now_iso())
            else:
                self.update("local", status="failed", error=error or "no run folder", finished_at=now_iso())
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.say("local", self.record.host("local").status)

    def _run_remote(self, names: list[str]) -> None:
        job = self.folder.path / "job.json"
        job.write_text(json.dumps(self.job()))
        outcome = self.playbook().run(names, ["prepare", "run", "finish"], self.extravars(job))
        if self.cancelled.is_set():
            return  # _stop brings home what is left
        for name in names:
            self.bring_home(name, outcome)

    def bring_home(self, name: str, outcome: Outcome, stopped: bool = False) -> None:
        """Unpack a host's fetched run folder into the fleet folder and record how the host ended."""
        run, tar = self.runs[name], outcome.fetched.get(name)
        finished = outcome.finished.get(name) or {}
        if run.returncode is None and finished.get("exit") is not None:
            run.returncode = int(finished["exit"])
        for line in finished.get("stderr") or []:
            run.stderr_tail.append(str(line))
        fields = {"finished_at": now_iso()}
        try:
            if tar is not None:
                unpack_run(tar, self.fleet_dir / name)
        except (OSError, RuntimeError, tarfile.TarError) as error:
            outcome.failed.setdefault(name, f"unpacking its run folder: {error}")
            tar = None
        if tar is not None:
            status, error = run.ended() if run.returncode is not None else ("interrupted", "stopped")
            if stopped and status == "complete":
                status, error = "interrupted", "interrupted"
            fields.update(status=status, error=outcome.failed.get(name) or error, run_dir=name,
                          run_id=run.result.get("run_id"))
        else:
            fields.update(status="failed", error=outcome.failed.get(name) or run.ended()[1])
        self.update(name, **fields)
        self.say(name, f"{fields['status']}{': ' + fields['error'] if fields.get('error') else ''}")

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
        self.emit(RunDone(f"fleet {self.fleet_id}: " + ", ".join(f"{o.name} {o.status}" for o in targets),
                          run_dir=self.fleet_dir))
        return self.fleet_dir


def unpack_run(tar: Path, destination: Path) -> Path:
    """The one run folder in a fetched tar, moved to `destination`."""
    temp = destination.with_name(f".{destination.name}.fetching")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    with tarfile.open(tar) as archive:
        archive.extractall(temp, filter="data")
    folders = [path for path in temp.iterdir() if (path / "run.json").is_file()]
    if len(folders) != 1:
        shutil.rmtree(temp, ignore_errors=True)
        raise RuntimeError(f"the fetched run folder is not one run ({len(folders)} found)")
    folders[0].rename(destination)
    shutil.rmtree(temp, ignore_errors=True)
    tar.unlink()
    return destination


def run_fleet(scenario, hosts: list[FleetHost], inventory, out: Path, progress: ProgressFn = no_progress,
              command_line: list[str] | None = None, load_from: FleetHost | None = None) -> Path:
    """Run `scenario` on every host in parallel (the first against `load_from`'s load, when given)."""
    return FleetRun(scenario, hosts, inventory, out, progress, command_line, load_from).run()
