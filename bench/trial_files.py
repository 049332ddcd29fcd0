"""A trial's raw files inside its run folder: latencies as .npy, samples as CSV. Writing is plain;
reading is guarded, because a run folder may come from anywhere (another host, a mail, a hand
edit): a file that is corrupt, a pickle, of the wrong shape, or pointing outside the run folder is
an `UnreadableFile` naming it, and the outputs leave that trial out and say so."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bench.errors import ResultsError


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


def file_problems(run_dir: Path, files: dict[str, str]) -> dict[str, str]:
    """name -> why that raw file of a trial (its `files`) cannot be used (header checks only: fast)."""
    problems = {}
    for name, relative in files.items():
        check = array_problem if str(relative).endswith(".npy") else csv_problem
        problem = check(run_dir, relative)
        if problem is not None:
            problems[name] = problem
    return problems
