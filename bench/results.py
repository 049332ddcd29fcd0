"""The on-disk format of a run: one folder per run, written incrementally and atomically.

    results/<run_id>/run.json              metadata + one record per trial (this module's models)
    results/<run_id>/trials/<trial_id>/    latency_ms.npy, app_ms.npy (numpy.load),
                                           processes.csv, host.csv (any spreadsheet)

Format history (bump FORMAT_VERSION and add a migration in `_MIGRATIONS` for every change):
    1  first format.
    2  `layers`: what each setup variant is, stored by the run (label parts, stack, explanation,
       caveats, colour, order, baseline, roles), so every output reads it from the results and
       none needs the setup modules. v1 runs get the descriptions v1's setups had (data/layers_v1.json).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.errors import ResultsError

FORMAT_VERSION = 2
RUN_FILE = "run.json"
_V1_LAYERS = Path(__file__).parent / "data" / "layers_v1.json"

__all__ = ["FORMAT_VERSION", "LayerRecord", "ResultsError", "RunRecord", "TrialRecord", "UnreadableFile", "load_run",
           "read_array", "read_csv", "save_run"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # newer minor fields survive a round trip


class TrialRecord(_Model):
    """One measured trial: one setup variant, one workload, one repeat."""

    trial_id: str
    setup: str
    variant: str
    workload: str  # the workload's name (density: name-xN, N copies side by side)
    kind: str = "load"  # load, startup, idle or density
    repeat: int
    status: Literal["ok", "failed"]
    error: str | None = None
    started_at: str = ""
    startup_phases_s: dict[str, float] = Field(default_factory=dict)  # ordered, sum = launch -> first 200
    startup_s: float | None = None
    load: dict = Field(default_factory=dict)  # requests, errors, duration_s, throughput_rps, latency_ms{..}
    roles: dict[str, dict] = Field(default_factory=dict)  # role -> cpu_user_s, cpu_sys_s, rss_bytes, uss_bytes
    processes: list[dict] = Field(default_factory=list)  # per host process: pid, role, name, cpu, rss
    loadgen: dict = Field(default_factory=dict)  # the load generator's own CPU in the window
    host: dict = Field(default_factory=dict)  # host-wide CPU in the window
    cpu_us_per_request: dict[str, float] = Field(default_factory=dict)  # user, sys, over the setup's roles
    memory_bytes: dict[str, float | None] = Field(default_factory=dict)  # rss, uss, pss summed over roles
    inside: dict = Field(default_factory=dict)  # the app's own /stats (view from inside the layer)
    engine: dict = Field(default_factory=dict)  # the engine's accounting (cgroup, docker stats)
    facts: dict = Field(default_factory=dict)  # setup facts: image size, accel, ...
    sampler: dict = Field(default_factory=dict)  # hz, ticks, own_cpu_s, own_cpu_fraction
    files: dict[str, str] = Field(default_factory=dict)  # raw data files, relative to the run folder
    window_t: list[float] = Field(default_factory=list)  # measured window [start, end], the CSVs' `t` clock


class LayerRecord(_Model):
    """One setup variant as the run described it: how every output names, explains and draws it."""

    setup: str
    variant: str
    stack: str = ""  # the path a request takes: "app -> host kernel -> hardware"
    narration: str = ""  # what a class hears when the layer's first trial starts
    explanation: str = ""  # where its cost comes from, in plain words (the report)
    caveats: list[str] = Field(default_factory=list)  # what a reader must know (e.g. emulated CPU)
    colour: str | None = None  # its hue in every chart; None: one from the spare palette
    order: int = 50  # display order; the baseline comes first
    baseline: bool = False  # the setup every ratio is taken against
    roles: dict[str, dict] = Field(default_factory=dict)  # role key -> bench.roles.Role fields


class RunRecord(_Model):
    """A whole run: what was asked, on what machine, and every trial so far."""

    format_version: int = FORMAT_VERSION
    run_id: str
    status: Literal["running", "complete", "incomplete"] = "running"
    created_at: str
    finished_at: str | None = None
    command_line: list[str] = Field(default_factory=list)
    scenario: dict = Field(default_factory=dict)
    machine: dict = Field(default_factory=dict)
    pinning: dict = Field(default_factory=dict)
    seed: int = 0
    order: list[str] = Field(default_factory=list)  # the trial keys in the order they ran
    skipped: list[dict] = Field(default_factory=list)  # {setup, variant, reason}
    runner_pid: int = 0  # with status "running" and this pid gone, the run was killed
    runner_started: float = 0.0  # the runner process's start time (epoch s): tells it from a reused pid
    repeat_outcome: dict = Field(default_factory=dict)  # repeat: auto -> repeats run and what stopped them
    layers: list[LayerRecord] = Field(default_factory=list)  # every setup variant that was prepared
    trials: list[TrialRecord] = Field(default_factory=list)

    def effective_status(self) -> str:
        """"incomplete" for a run marked running whose runner process is gone (killed)."""
        if self.status == "running" and self.runner_pid and not _runner_alive(self.runner_pid, self.runner_started):
            return "incomplete"
        return self.status

    def ok_trials(self) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.status == "ok"]


def _runner_alive(pid: int, started: float) -> bool:
    """True while the process that wrote the run lives (not another that got its pid since)."""
    import psutil

    try:
        return not started or abs(psutil.Process(pid).create_time() - started) < 1.0
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


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_run(run_dir: Path, record: RunRecord) -> None:
    """Write run.json atomically (called after every trial)."""
    atomic_write(run_dir / RUN_FILE, record.model_dump_json(indent=1).encode())


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


_MIGRATIONS = {1: _v1_to_v2}  # from version N to N+1: {N: function(dict) -> dict}


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


def write_array(run_dir: Path, relative: str, values: np.ndarray) -> str:
    target = run_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        np.save(out, values)
    return relative


def write_csv(run_dir: Path, relative: str, columns: tuple[str, ...], rows: list[tuple]) -> str:
    target = run_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    return relative


class UnreadableFile(ResultsError):
    """A trial's raw file that cannot be used: corrupt, of the wrong kind, or pointing outside the
    run folder. The message names the file; outputs leave that trial out and say so."""

    def __init__(self, relative: str, reason: str):
        self.relative, self.reason = str(relative), reason
        super().__init__(f"unreadable file {str(relative)[:200]!r}: {reason}")


def trial_file(run_dir: Path, relative: str) -> Path:
    """The path of a trial's raw file; UnreadableFile when run.json points outside the run folder
    (absolute, `..`, or a symlink that leads out): a run folder from elsewhere must not make
    layerbench read, or draw from, any other file."""
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise UnreadableFile(relative, "points outside the run folder; refused")
    root = Path(run_dir).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise UnreadableFile(relative, "leads outside the run folder (symlink); refused")
    return path


def array_problem(run_dir: Path, relative: str) -> str | None:
    """Why a stored .npy cannot be used (from its header and size alone: cheap), or None."""
    try:
        path = trial_file(run_dir, relative)
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            data_bytes = path.stat().st_size - handle.tell()
    except UnreadableFile as error:
        return error.reason
    except FileNotFoundError:
        return None  # a missing file is an absent figure, not a corrupt one
    except (OSError, ValueError, EOFError, TypeError, SyntaxError) as error:
        return f"not a numpy array file ({type(error).__name__}: {' '.join(str(error).split())[:100]})"
    if dtype.hasobject:
        return "holds Python objects (a pickle); refused"
    if dtype.kind not in "fiu":
        return f"holds {dtype} values, not numbers"
    if len(shape) != 1:
        return f"has shape {shape}, not one list of numbers"
    if data_bytes != shape[0] * dtype.itemsize:
        return f"truncated or padded: {data_bytes} bytes of data for {shape[0]} values"
    return None


def read_array(run_dir: Path, relative: str) -> np.ndarray:
    """A stored raw array of numbers (latencies); empty when the file is missing, UnreadableFile
    (naming it) when it is corrupt, a pickle, not one list of numbers, or outside the run folder."""
    problem = array_problem(run_dir, relative)
    if problem is not None:
        raise UnreadableFile(relative, problem)
    path = trial_file(run_dir, relative)
    if not path.is_file():
        return np.array([])
    try:
        return np.load(path, allow_pickle=False).astype(float)
    except (OSError, ValueError, EOFError) as error:
        raise UnreadableFile(relative, f"{type(error).__name__}: {' '.join(str(error).split())[:100]}") from None


def csv_problem(run_dir: Path, relative: str) -> str | None:
    """Why a stored CSV cannot be used (from its header line: cheap), or None."""
    try:
        with open(trial_file(run_dir, relative), "rb") as handle:
            first = handle.readline(4096)
        columns = first.decode("utf-8").strip().split(",")
    except UnreadableFile as error:
        return error.reason
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        return f"not a CSV file of layerbench ({type(error).__name__})"
    if "t" not in columns or not all(column.isidentifier() for column in columns):
        return "not a CSV file of layerbench (no header with a t column)"
    return None


def read_csv(run_dir: Path, relative: str) -> list[dict[str, str]]:
    """A stored CSV's rows as dicts (values as text); [] when missing, UnreadableFile when corrupt."""
    problem = csv_problem(run_dir, relative)
    if problem is not None:
        raise UnreadableFile(relative, problem)
    path = trial_file(run_dir, relative)
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            text = handle.read()
        if "\0" in text:
            raise UnreadableFile(relative, "holds NUL bytes: not a CSV file of layerbench")
        rows = list(csv.DictReader(text.splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UnreadableFile(relative, f"{type(error).__name__}: {' '.join(str(error).split())[:100]}") from None
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():  # more or fewer fields than the header names
            raise UnreadableFile(relative, f"line {number} does not match the header's columns")
    return rows


def file_problems(run_dir: Path, trial: TrialRecord) -> dict[str, str]:
    """name -> why that raw file of the trial cannot be used (header checks only: fast)."""
    problems = {}
    for name, relative in trial.files.items():
        check = array_problem if str(relative).endswith(".npy") else csv_problem
        problem = check(run_dir, relative)
        if problem is not None:
            problems[name] = problem
    return problems
