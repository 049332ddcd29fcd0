"""The on-disk format of a run: one folder per run, written incrementally and atomically.

    results/<run_id>/run.json              metadata + one record per trial (this module's models)
    results/<run_id>/trials/<trial_id>/    latency_ms.npy, app_ms.npy (numpy.load),
                                           processes.csv, host.csv (any spreadsheet): bench.trial_files

Format history (bump FORMAT_VERSION and add a migration in `_MIGRATIONS` for every change):
    1  first format.
    2  `layers`: what each setup variant is, stored by the run (label parts, stack, explanation,
       caveats, colour, order, baseline, roles), so every output reads it from the results and
       none needs the setup modules. v1 runs get the descriptions v1's setups had (data/layers_v1.json).
    3  `runner_host` (hostname and boot id of the machine whose process wrote the run: its
       `runner_pid` means something only there, and runs come home from other hosts) and `split`
       (a run whose load came from another host: which, at what address, that machine). v2 runs
       get the hostname their `machine` block names and no split.
    4  `app` on every trial and layer: which app ran (python, nginx, a user's image reference); a run
       may hold several, and every figure compares against the baseline of the same app. v3 runs
       only ever ran the python app.
    5  a layer's `stack_layers` (the boxes of the layer-stack figure) and `fixed_roles`; a trial's
       `fixed` block (the engine daemons sampled over its window, apart from the instance's roles).
       v4 runs get the boxes of the setups they knew (data/stack_layers_v4.json) and no fixed costs.
       Later, without a version bump (an optional block with an empty default, which older readers keep
       as an extra field): a load trial's `network_path`, the packets and bytes at each hop.
    6  typed blocks (bench.records), their fields carrying units: the run's `machine`, `runner_host`,
       `pinning`, `split`, `skipped`, `quiet_waits`, `repeat_outcome`; a trial's `memory_bytes`,
       `cpu_us_per_request` (now `user_us`, `sys_us`), `roles` and `fixed` (RoleSample), `sampler`,
       `files`, `load` (LoadSummary), `host`, `loadgen`, `processes`, `speed`. An absent block is null,
       not {}. v5 runs: the same figures, renamed and nulled so. Still open mappings: `facts`,
       `engine`, `inside`, `startup_phases_s` (keys not known in advance).
       Later, without a version bump (the stored shape is the same): a layer's `roles` (RoleRecord),
       the run's `scenario` (ScenarioRecord) and a trial's `network_path` (NetworkPathRecord, written
       with only the fields the probe gave, {} when absent) are typed too; a setup's options in the
       scenario and a path's `facts` stay mappings of their own.
       Later, without a version bump (an optional field, None in runs written before): a load trial's
       `app_ms.p5`, the fast end of the app's own time per request (the code-change gate's figure).
       Later, without a version bump: a trial's `inside` is typed (InsideView, the fields the app's
       /stats gives); an app without such a view stores null where runs before stored {}, and both read.
       A trial's `facts` is typed too (TrialFacts: `fresh_start`, `instances`, `accel`, and each
       setup's own facts as it gave them); the stored shape is the same.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.atomic import atomic_write, interrupts_deferred
from bench.errors import ResultsError
from bench.machine import this_host
from bench.path_records import NetworkPathRecord
from bench.records import (CpuPerRequest, HostSample, InsideView, LoadSummary, Machine, MemoryBytes, Pinning, ProcessSample,
                            QuietWait, RepeatOutcome, RoleRecord, RoleSample, RunnerHost, SamplerStats, ScenarioRecord,
                            Skipped, Speed, Split, TrialFacts, TrialFiles)

FORMAT_VERSION = 6
# Format history: the one app every run ran before format 4 (bench.apps.python). A record that names
# no app ran it, and its trial ids, labels and seeds carry no app part (as they had before apps).
FIRST_APP = "python"
RUN_FILE = "run.json"
_V1_LAYERS = Path(__file__).parent / "data" / "layers_v1.json"
_V4_STACKS = Path(__file__).parent / "data" / "stack_layers_v4.json"

__all__ = ["FIRST_APP", "FORMAT_VERSION", "LayerRecord", "ResultsError", "RunRecord", "TrialRecord", "atomic_write",
           "load_run", "save_run"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # newer minor fields survive a round trip


class TrialRecord(_Model):
    """One measured trial: one setup variant, one workload, one repeat."""

    trial_id: str
    setup: str
    variant: str
    app: str = FIRST_APP  # the app that ran (bench.apps): its kind, or an image reference
    workload: str  # the workload's name (density: name-xN, N copies side by side)
    kind: str = "load"  # load, startup, idle or density
    repeat: int  # the round
    # ok: measured and counted; failed: no figure (the reason in `error`); discarded: measured, then set
    # aside by the runner (a busy round measured again: the reason in `error`), in no figure.
    status: Literal["ok", "failed", "discarded"]
    error: str | None = None
    start_id: str = ""  # the launch it ran on: trials with the same start_id shared one start ("" before)
    started_at: str = ""
    startup_phases_s: dict[str, float] = Field(default_factory=dict)  # ordered, sum = launch -> first 200
    startup_s: float | None = None
    load: LoadSummary | None = None  # a load trial's requests, throughput, latency percentiles
    roles: dict[str, RoleSample] = Field(default_factory=dict)  # by role key (the setup's roles)
    processes: list[ProcessSample] = Field(default_factory=list)  # per host process
    loadgen: RoleSample | None = None  # the load generator's own processes in the window
    host: HostSample = Field(default_factory=HostSample)  # host-wide CPU in the window
    cpu_us_per_request: CpuPerRequest | None = None  # over the setup's roles; None without requests
    memory_bytes: MemoryBytes = Field(default_factory=MemoryBytes)  # summed over the setup's roles
    inside: InsideView | None = None  # the app's own /stats (its view from inside the layer), if it has one
    engine: dict = Field(default_factory=dict)  # the engine's accounting (cgroup, docker stats)
    facts: TrialFacts = Field(default_factory=TrialFacts)  # setup facts: image size, accel, ...
    sampler: SamplerStats = Field(default_factory=SamplerStats)
    files: TrialFiles = Field(default_factory=TrialFiles)  # raw data files, relative to the run folder
    window_t: list[float] = Field(default_factory=list)  # measured window [start, end], the CSVs' `t` clock
    # The setup's fixed-cost processes (engine daemons) over the same window, by role, like `roles`;
    # never part of `roles`, `memory_bytes` or `cpu_us_per_request`, which are per instance.
    fixed: dict[str, RoleSample] = Field(default_factory=dict)
    # calibrate: the machine's speed measured on the app's CPUs just before and after the trial
    # (hashes_per_s, the geometric mean of the two; cpus; probe_s): bench.metrics.speed.
    speed: Speed | None = None
    # A load trial's network path, hop by hop (bench.metrics.netpath.PathProbe.summary documents
    # every field): the steps from the load generator to the app in order, each interface with its
    # rx/tx packets and bytes over the measured window and per request, the app's own interface seen
    # from inside, connection-tracking entries and a published port's DNAT count over the trial.
    network_path: NetworkPathRecord = Field(default_factory=NetworkPathRecord)

    @field_validator("load", "cpu_us_per_request", "loadgen", "speed", "inside", mode="before")
    @classmethod
    def _empty_is_absent(cls, value):
        """{} (how format 5 said "none", and what a hand-made record may say) is an absent block."""
        return None if value == {} else value


class LayerRecord(_Model):
    """One setup variant as the run described it: how every output names, explains and draws it."""

    setup: str
    variant: str
    app: str = FIRST_APP  # the app this layer ran; a layer's words may depend on it (bare for an image)
    stack: str = ""  # the path a request takes: "app -> host kernel -> hardware"
    narration: str = ""  # what a class hears when the layer's first trial starts
    explanation: str = ""  # where its cost comes from, in plain words (the report)
    caveats: list[str] = Field(default_factory=list)  # what a reader must know (e.g. emulated CPU)
    colour: str | None = None  # its hue in every chart; None: one from the spare palette
    order: int = 50  # display order; the baseline comes first
    baseline: bool = False  # the setup every ratio is taken against
    roles: dict[str, RoleRecord] = Field(default_factory=dict)  # role key -> bench.roles.Role fields
    stack_layers: list[str] = Field(default_factory=list)  # layer-stack boxes, bottom-up ("guest kernel", ...)
    fixed_roles: list[str] = Field(default_factory=list)  # role keys costed once per host (engine daemons)


class RunRecord(_Model):
    """A whole run: what was asked, on what machine, and every trial so far."""

    format_version: int = FORMAT_VERSION
    run_id: str
    status: Literal["running", "complete", "incomplete"] = "running"
    created_at: str
    finished_at: str | None = None
    command_line: list[str] = Field(default_factory=list)
    scenario: ScenarioRecord = Field(default_factory=ScenarioRecord)  # as it ran (bench.scenario's fields)
    machine: Machine = Field(default_factory=Machine)
    pinning: Pinning | None = None  # None: not pinned
    seed: int = 0
    order: list[str] = Field(default_factory=list)  # the trial keys in the order they ran
    skipped: list[Skipped] = Field(default_factory=list)
    runner_pid: int = 0  # with status "running" and this pid gone, the run was killed
    runner_started: float = 0.0  # the runner process's start time (epoch s): tells it from a reused pid
    runner_host: RunnerHost | None = None  # where runner_pid lives
    split: Split | None = None  # a run whose load came from another host
    # How many rounds ran and what stopped them: mode (fixed, auto, budget), rounds, cap, budget_s,
    # elapsed_s, stopped_by (count, settled, target, budget, cap) and the state of the verdicts then.
    repeat_outcome: RepeatOutcome | None = None
    quiet_waits: list[QuietWait] = Field(default_factory=list)  # wait_quiet: per round
    layers: list[LayerRecord] = Field(default_factory=list)  # every setup variant that was prepared
    trials: list[TrialRecord] = Field(default_factory=list)

    def effective_status(self) -> str:
        """"incomplete" for a run marked running whose runner process is gone (killed). Only judged
        on the machine that ran it: a run fetched from another host carries that host's pid."""
        if (self.status == "running" and self.runner_pid and self.ran_here()
                and not _runner_alive(self.runner_pid, self.runner_started)):
            return "incomplete"
        return self.status

    def ran_here(self) -> bool:
        """True when this machine (hostname, and boot id where both are known) wrote the run."""
        here, there = this_host(), self.runner_host or RunnerHost(hostname=self.machine.hostname)
        if there.hostname != here["hostname"]:
            return False
        return not (there.boot_id and here["boot_id"]) or there.boot_id == here["boot_id"]

    def ok_trials(self) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.status == "ok"]


def _runner_alive(pid: int, started: float) -> bool:
    """True while the process that wrote the run lives (not another that got its pid since)."""
    import psutil

    try:
        created = psutil.Process(pid).create_time()
        return not started or abs(created - started) < 1.0  # a run written before start times were kept: pid only
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def runner_identity() -> tuple[int, float]:
    """(pid, start time) of this process, as a run records its runner."""
    import psutil

    return os.getpid(), psutil.Process().create_time()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(scenario_name: str) -> str:
    """Sortable, unique enough for two runs started in the same second on one machine."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{scenario_name}-{os.getpid() % 100000:05d}"


def save_run(run_dir: Path, record: RunRecord) -> None:
    """Write run.json atomically (called after every trial); a Ctrl-C while it is serialised and
    written takes effect just after (bench.atomic.interrupts_deferred says why)."""
    with interrupts_deferred():
        text = record.model_dump_json(indent=1)
        atomic_write(run_dir / RUN_FILE, text.encode())


def _migrate(data: dict, path: Path) -> dict:
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultsError(f"{path}: no integer format_version; not a layerbench run file")
    if version < 1:  # there is no migration from below the first format
        raise ResultsError(f"{path}: format version {version} does not exist; not a layerbench run file")
    if version > FORMAT_VERSION:
        raise ResultsError(f"{path}: format version {version} is newer than this layerbench reads "
                           f"({FORMAT_VERSION}); upgrade layerbench")
    for step in range(version, FORMAT_VERSION):
        data = _MIGRATIONS[step](data)
    return data


def _v1_to_v2(data: dict) -> dict:
    """v1 runs carried no layer descriptions: give them the ones v1's setups had."""
    known = json.loads(_V1_LAYERS.read_text())
    pairs = dict.fromkeys((t.get("setup"), t.get("variant")) for t in data.get("trials", []) if isinstance(t, dict))
    layers = []
    for setup, variant in pairs:
        template = known.get(setup, {})
        parts = str(variant).split(",")
        explanation = " ".join([template.get("explanation", ""),
                                *(template.get("variant_notes", {}).get(part, "") for part in parts)]).strip()
        caveats = [text for part in parts for text in template.get("caveats", {}).get(part, [])]
        layers.append({"setup": setup, "variant": variant, "stack": template.get("stack", ""),
                       "narration": template.get("narration", ""), "explanation": explanation,
                       "caveats": caveats, "colour": template.get("colour"), "order": template.get("order", 50),
                       "baseline": template.get("baseline", False), "roles": template.get("roles", {})})
    return {**data, "format_version": 2, "layers": layers}


def _v2_to_v3(data: dict) -> dict:
    """v2 runs named only the machine: its hostname stands for the runner's; no split."""
    machine = data.get("machine")
    hostname = machine.get("hostname") if isinstance(machine, dict) else None
    return {**data, "format_version": 3, "runner_host": {"hostname": hostname if isinstance(hostname, str) else None},
            "split": {}}


def _v3_to_v4(data: dict) -> dict:
    """v3 runs ran layerbench's own python app only."""
    def with_app(items):
        if not isinstance(items, list):
            return items  # not a list: validation reports it
        return [{"app": FIRST_APP, **item} if isinstance(item, dict) else item for item in items]

    return {**data, "format_version": 4, "trials": with_app(data.get("trials", [])),
            "layers": with_app(data.get("layers", []))}


def _v4_to_v5(data: dict) -> dict:
    """v4 runs had no layer-stack boxes: give each layer the ones its setup had then (none for others)."""
    known = json.loads(_V4_STACKS.read_text())
    layers = []
    for layer in data.get("layers", []):
        if isinstance(layer, dict) and not layer.get("stack_layers"):
            boxes = known.get(str(layer.get("setup")), {})
            first = str(layer.get("variant", "")).split(",")[0]
            layer = {**layer, "stack_layers": boxes.get(first, boxes.get("*", []))}
        layers.append(layer)
    return {**data, "format_version": 5, "layers": layers}


def _v5_to_v6(data: dict) -> dict:
    """v5 kept blocks as free dicts, {} when absent: typed now (bench.records), null when absent, and
    CPU per request names its unit (user_us, sys_us). The figures are the same."""
    def absent_is_null(value):
        return None if value == {} else value

    def trial(item):
        if not isinstance(item, dict):
            return item  # validation reports it
        cpu = item.get("cpu_us_per_request")
        if isinstance(cpu, dict):
            cpu = {"user_us": cpu["user"], "sys_us": cpu["sys"]} if "user" in cpu and "sys" in cpu else None
        return {**item, "cpu_us_per_request": cpu, "load": item.get("load") or None,
                "loadgen": item.get("loadgen") or None, "speed": item.get("speed") or None}

    trials = data.get("trials", [])
    return {**data, "format_version": 6, **{key: absent_is_null(data.get(key)) for key in
                                            ("split", "pinning", "runner_host", "repeat_outcome") if key in data},
            "trials": [trial(item) for item in trials] if isinstance(trials, list) else trials}


_MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}  # from version N to N+1: {N: function(dict) -> dict}


def load_run(run_dir: Path) -> RunRecord:
    """Read a run folder's run.json, migrating older formats; ResultsError with the reason otherwise."""
    path = Path(run_dir) / RUN_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such run file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: unreadable ({error})") from None
    except (RecursionError, ValueError) as error:  # nesting deeper than the stack; ints over 4300 digits
        raise ResultsError(f"{path}: unreadable ({type(error).__name__}: {str(error)[:120]})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    try:
        return RunRecord.model_validate(_migrate(data, path))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ResultsError(f"{path}: {where}: {first['msg']}") from None


def resolve_run(name_or_path: str, results_dir: Path) -> Path:
    """A run folder from its id (under results_dir), its path, or "latest"."""
    if name_or_path == "latest":
        runs = list_runs(results_dir)
        if not runs:
            raise ResultsError(f"no runs in {results_dir}")
        return runs[-1]
    candidate = Path(name_or_path)
    if (candidate / RUN_FILE).exists():
        return candidate
    if "/" not in name_or_path and (results_dir / name_or_path / RUN_FILE).exists():
        return results_dir / name_or_path
    raise ResultsError(f"no run {name_or_path!r} (looked in {candidate} and {results_dir / name_or_path}); "
                       f"see: bench list")


def list_runs(results_dir: Path) -> list[Path]:
    """Run folders under results_dir, oldest first."""
    if not results_dir.is_dir():
        return []
    return sorted(path for path in results_dir.iterdir() if (path / RUN_FILE).is_file())
