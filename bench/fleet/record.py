"""The on-disk format of a fleet: one folder holding each host's run folder and a small fleet.json.

    results/<fleet_id>/fleet.json      which hosts, the status of each, its error, where its run is
    results/<fleet_id>/<host>/         that host's run folder, as `bench run` writes it (run.json, trials/)
    results/<fleet_id>/report.html     the machines side by side (bench report <fleet_id>)

fleet.json is rewritten atomically whenever a host's state changes, so a fleet interrupted or
killed half-way still says which hosts finished.

Format history: 1  first format.
                2  the runner (pid, host) and its lock (runner.lock), the inventory, the local ssh
                   folder, each host's user and Python: a fleet whose runner is gone reads as
                   interrupted, and `bench clean` knows where to stop what it left.
                3  `split` and `runner_host` are the run format's typed blocks (bench.records), null
                   when absent (not {}): fleet.json and run.json share their record types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.errors import ResultsError
from bench.atomic import atomic_write
from bench.records import RunnerHost, ScenarioRecord, Split
from bench.results import RUN_FILE, list_runs, now_iso

FLEET_FILE = "fleet.json"
FLEET_FORMAT_VERSION = 3
HostStatus = Literal["pending", "preparing", "running", "fetching", "complete", "incomplete", "failed",
                     "interrupted"]
FINISHED = ("complete", "incomplete", "failed", "interrupted")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class HostOutcome(_Model):
    """One host of a fleet: where it is, how far it got, and its run folder (relative) if any."""

    name: str
    target: str = ""  # user@host:port, or "this machine"
    role: Literal["target", "load"] = "target"
    status: HostStatus = "pending"
    error: str | None = None
    run_dir: str | None = None  # relative to the fleet folder
    run_id: str | None = None
    installed: str | None = None  # what preparing it did ("installed layerbench 0.1.0+...")
    user: str | None = None  # who the run went as there (after become)
    python: str | None = None  # the Python of its venv
    started_at: str | None = None
    finished_at: str | None = None


class FleetRecord(_Model):
    format_version: int = FLEET_FORMAT_VERSION
    fleet_id: str
    status: Literal["running", "complete", "incomplete"] = "running"
    created_at: str
    finished_at: str | None = None
    command_line: list[str] = Field(default_factory=list)
    scenario: ScenarioRecord = Field(default_factory=ScenarioRecord)  # as results.RunRecord's
    split: Split | None = None  # a fleet whose load came from one host (bench.records.Split)
    hosts: list[HostOutcome] = Field(default_factory=list)
    inventory: str | None = None  # the inventory's absolute path (bench clean reads it again)
    inventory_named: bool = True  # named by the user (False: found in the current folder)
    runner_pid: int = 0
    runner_host: RunnerHost | None = None  # the machine that ran it
    local_folder: str | None = None  # /tmp/lb-ssh-*: ansible-runner's data and the ssh sockets

    def host(self, name: str) -> HostOutcome:
        return next(outcome for outcome in self.hosts if outcome.name == name)

    @property
    def targets(self) -> list[HostOutcome]:
        return [outcome for outcome in self.hosts if outcome.role == "target"]

    def runner_gone(self, fleet_dir: Path) -> bool:
        """A fleet that says "running" whose runner is dead (killed): nobody will finish it."""
        from bench.machine import this_host
        from bench.runlock import live_writer

        if self.status != "running":
            return False
        here, there = this_host(), self.runner_host or RunnerHost()
        if there.hostname and there.hostname != here["hostname"]:
            return False  # written on another machine: only that machine can tell
        if there.boot_id and here["boot_id"] and there.boot_id != here["boot_id"]:
            return True  # written before a reboot
        return live_writer(fleet_dir, self.runner_pid) is None


def save_fleet(fleet_dir: Path, record: FleetRecord) -> None:
    atomic_write(Path(fleet_dir) / FLEET_FILE, record.model_dump_json(indent=1).encode())


def load_fleet(fleet_dir: Path) -> FleetRecord:
    """Read fleet.json; ResultsError naming the file and the problem otherwise."""
    path = Path(fleet_dir) / FLEET_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such fleet file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ResultsError(f"{path}: unreadable ({type(error).__name__}: {str(error)[:120]})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FLEET_FORMAT_VERSION:
        raise ResultsError(f"{path}: fleet format version {version!r} is not one this layerbench reads "
                           f"(1..{FLEET_FORMAT_VERSION})")
    if version < 3:  # the typed blocks: absent is null, not {}
        data = {**data, "format_version": 3, **{key: data[key] or None for key in ("split", "runner_host") if key in data}}
    try:
        return FleetRecord.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise ResultsError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def is_fleet(path: Path) -> bool:
    return (Path(path) / FLEET_FILE).is_file()


def list_fleets(results_dir: Path) -> list[Path]:
    """Fleet folders under results_dir, oldest first."""
    if not Path(results_dir).is_dir():
        return []
    return sorted(path for path in Path(results_dir).iterdir() if is_fleet(path))


def resolve(name_or_path: str, results_dir: Path) -> Path | None:
    """A fleet folder from its id, its path, or "latest" (when the newest stored thing is a fleet);
    None when the name is not a fleet (it may be a run)."""
    if name_or_path == "latest":
        newest = sorted([*list_fleets(results_dir), *list_runs(results_dir)], key=lambda path: path.name)
        return newest[-1] if newest and is_fleet(newest[-1]) else None
    candidate = Path(name_or_path)
    if is_fleet(candidate):
        return candidate
    if "/" not in name_or_path and is_fleet(Path(results_dir) / name_or_path):
        return Path(results_dir) / name_or_path
    return None


def run_folders(fleet_dir: Path, record: FleetRecord) -> list[tuple[str, Path]]:
    """(host name, run folder) of every target host whose run came home."""
    found = []
    for outcome in record.targets:
        if outcome.run_dir and "/" not in outcome.run_dir and outcome.run_dir not in (".", ".."):  # user-editable
            folder = Path(fleet_dir) / outcome.run_dir
            if (folder / RUN_FILE).is_file():
                found.append((outcome.name, folder))
    return found


def new_fleet(fleet_id: str, scenario: dict, command_line: list[str], hosts: list[HostOutcome]) -> FleetRecord:
    from bench.machine import this_host

    return FleetRecord(fleet_id=fleet_id, created_at=now_iso(), scenario=scenario, command_line=command_line,
                       hosts=hosts, runner_host=RunnerHost(**this_host()))
