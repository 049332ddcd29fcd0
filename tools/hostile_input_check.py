"""Measurement check, run by a developer: the real command line (in a child process) on hostile and
careless inputs, printing each one's wall time, peak RSS and answer. The bound: any scenario input
answered within 2 s and 300 MB of RSS (TIME_BOUND_S, RSS_BOUND_MB), with one line, exit 1 and no
traceback. Then the careless uses a run, the gate, the exports and `bench clean` must answer: a
user's image that is not here, a run that measures nothing, a gate with nothing to check, a
malformed --fail-on, control characters and formulas bound for an export, NO_COLOR on a terminal,
and a runner killed during the KVM probe. Each says what it expects.

    .venv/bin/python -m tools.hostile_input_check
    .venv/bin/python -m tools.hostile_input_check --bench /work/main/.venv/bin/bench  # another checkout
    .venv/bin/python -m tools.hostile_input_check --only bomb   # the cases whose name holds "bomb"

Each child runs under an address-space limit (--max-memory-mb) and a timeout, so measuring an
older checkout that reads /dev/zero to the end cannot take the machine down with it. The careless-use
cases need Docker (the image case) and run `bench clean`, which also removes what dead runs left.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tools.child import run_one

# Valid: every case adds a fault, and one the checked code refuses even without the new bounds, so an
# older checkout never starts a real run.
GOOD = "name: t\nsetups: [bare]\nworkloads: [hello]\n"
TIME_BOUND_S = 2.0
RSS_BOUND_MB = 300


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Each level a list of `width` aliases to the level below: width**levels values once expanded."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return GOOD + "\n".join(lines) + "\n"


def merge_bomb(levels: int = 20) -> str:
    """Merge keys (<<) doubling a mapping at each level."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for level in range(1, levels):
        lines.append(f"m{level}: &m{level} {{x{level}: [*m{level - 1}, *m{level - 1}], <<: *m{level - 1}}}")
    return GOOD + "\n".join(lines) + "\n"


def largest_scenario() -> str:
    """Every list and string of the schema at its maximum (about 100 KB, 10683 values), block style."""
    workloads = [{"name": f"workload-{i:02d}-" + "x" * 48, "kind": "load", "endpoint": "cpu", "param": 10_000_000,
                  "mode": "open", "connections": 1024, "rate": 1_000_000.0, "duration": 3600.0, "warmup": 600.0,
                  "load": "builtin", "instances": list(range(25, 33))} for i in range(64)]
    # Distinct variants (a variant may appear once): 32 memory sizes.
    setups = [{"vm": {"accel": "auto", "memory_mb": 16384 - i, "kernel": "/" + "k" * 200, "vcpus": 64,
                      "release_boot_files": True, "disk": True}} for i in range(32)]
    return yaml.safe_dump({"name": "n" * 64, "description": "d" * 2000, "setups": setups, "workloads": workloads,
                           "repeat": 1000, "pinning": {"app_cpus": list(range(4096)), "load_cpus": list(range(4096))}},
                          default_flow_style=False, width=100)


def cases(folder: Path) -> dict[str, str]:
    """name -> path of each hostile input (files are written into folder)."""
    texts = {
        "alias bomb, 9 levels": alias_bomb(),
        "merge-key bomb": merge_bomb(),
        "300 aliases": GOOD + "a: &a x\nb: [" + ", ".join(["*a"] * 300) + "]\n",
        "self-referring alias": GOOD + "x: &x [*x]\n",
        "deep nesting (5000 [)": GOOD + "x: " + "[" * 5000 + "]" * 5000 + "\n",
        "duplicate keys": GOOD + "name: u\nunknown: 1\n",
        "largest valid scenario + 1 bad key": largest_scenario() + "unknown: 1\n",
        "4301-digit integer": GOOD + "seed: " + "9" * 4301 + "\n",
        "255 KiB of flow integers": GOOD + "x: [" + ", ".join(["1"] * (255 * 1024 // 3)) + "]\n",
        "255 KiB of block keys": GOOD + "".join(f"k{i}: 1\n" for i in range(255 * 1024 // 10)),
        "255 KiB of %TAG directives": "".join(f"%TAG !t{i}! tag:x,1:\n" for i in range(255 * 1024 // 22))
                                      + "---\n" + GOOD + "unknown: 1\n",
        "255 KiB scalar": GOOD + "description: " + "x" * (255 * 1024) + "\n",
        "256 KiB + 1 byte": GOOD + "unknown: 1\n" + "#" * (256 * 1024 - len(GOOD) - 11) + "\n",
    }
    paths = {}
    for index, (name, text) in enumerate(texts.items()):
        path = folder / f"case{index}.yaml"
        path.write_text(text)
        paths[name] = str(path)
    big = folder / "big.yaml"  # a 50 MB scenario: real YAML, one unknown key at the top
    with open(big, "w") as handle:
        handle.write(GOOD + "extra:\n")
        handle.write("  - {name: w, endpoint: hello, duration: 1}\n" * (50_000_000 // 43))
    paths["50 MB scenario"] = str(big)
    os.mkfifo(folder / "silent.fifo")
    paths["FIFO with no writer"] = str(folder / "silent.fifo")
    for index, name in enumerate(WRITERS):
        os.mkfifo(folder / f"fed{index}.fifo")
        paths[name] = str(folder / f"fed{index}.fifo")
    paths["/dev/zero"] = "/dev/zero"
    paths["/dev/urandom"] = "/dev/urandom"
    paths["a directory"] = str(folder)
    return paths


def _endless_writer(path: str, stop: threading.Event, chunk: bytes, pause_s: float) -> None:
    """Keep a FIFO fed with YAML until the reader hangs up (or the check ends)."""
    try:
        fd = os.open(path, os.O_WRONLY)  # blocks until the child opens the FIFO for reading
    except OSError:
        return
    try:
        while not stop.is_set():
            os.write(fd, chunk)
            time.sleep(pause_s)
    except OSError:  # EPIPE once the reader has read its fill and closed
        pass
    finally:
        os.close(fd)


WRITERS = {  # FIFOs fed by a thread here: (what each write sends, pause after it)
    "FIFO with an endless writer": (b"- lol\n" * 1024, 0.0),
    "FIFO trickling a byte a tick": (b"#", 0.05),
}


# ---- careless use: a run, the gate, the exports and bench clean ---------------------------------

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "small_run"  # a stored run, 16 trials
ESCAPES = "\x1b]0;owned\x07\x1b[2J"  # what an image may print: retitles the terminal, clears the screen
REDRAWS = ("\x1b[?25l", "\x1b[2K", "\x1b[1A")  # hide the cursor, erase a line, move up: a progress bar redrawn
FORMULA = re.compile(r"\s*[=+\-@\uff1d\uff0b\uff0d\uff20]")
PROBING = """
import sys, time
import bench.setups.vm.accel as accel
accel.kvm_usable = lambda: (True, "")
def spawn(*args, **kwargs):  # QEMU's boot under KVM, waiting (this checks the probe's folder, not QEMU)
    print("probing", flush=True)
    time.sleep(60)
accel.spawn = spawn
accel.probe_kvm_boot(plan=None)
"""


@dataclass
class Case:
    """One command and what a careful tool answers: its exit status, one line or not, and `check`
    (output, folder) -> a problem in words, or None."""

    args: list[str]
    status: int
    one_line: bool = False
    check: Callable[[str, Path], str | None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    terminal: bool = False
    bound_s: float = TIME_BOUND_S
    before: Callable[[Path], None] | None = None  # sets the stage in the folder, untimed


def _stored_run(folder: Path, name: str, edit=None) -> str:
    """A copy of the fixture run (run.json edited by `edit`) under folder/name."""
    target = folder / name
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("_generate.py", "README.md"))
    if edit is not None:
        data = json.loads((target / "run.json").read_text())
        edit(data)
        (target / "run.json").write_text(json.dumps(data))
    return str(target)


def _every_trial_failed(data: dict) -> None:
    data["run_id"] = "failed-base"
    for trial in data["trials"]:
        trial.update(status="failed", error="the setup stopped answering", load={}, cpu_us_per_request={},
                     memory_bytes={}, startup_s=None)


def _pss_unreadable(data: dict) -> None:
    for trial in data["trials"]:
        trial["memory_bytes"] = {key: value for key, value in trial["memory_bytes"].items() if "pss" not in key}


def _hostile_texts(data: dict) -> None:
    """Formulas, control characters and a newline in every text of run.json an image or a user controls."""
    data["run_id"] = '=HYPERLINK("http://evil.example","x")' + ESCAPES
    data["scenario"]["name"] = "s\n" + ESCAPES
    for trial in data["trials"]:
        trial["app"] = "@SUM(1+1)*cmd|' /C calc'!A0"
        if trial["variant"] == "host":
            trial["variant"] = "+cmd|' /C calc'!A0\n" + ESCAPES
        if trial["workload"] == "cpu":
            trial["workload"] = "-2+3+cmd|' /C calc'!A0" + ESCAPES
        if (trial["setup"], trial["workload"]) == ("bare", "hello"):
            trial.update(status="failed", error="app printed " + ESCAPES + " then died", load={},
                         cpu_us_per_request={}, memory_bytes={}, startup_s=None)


def _no_controls(output: str, folder: Path) -> str | None:
    found = sorted({ch for ch in output if ch != "\n" and not ch.isprintable()})
    return f"raw control characters {found!r}" if found else None


def _csv_neutral(output: str, folder: Path) -> str | None:
    problem = _no_controls(output, folder)
    rows = list(csv.reader(io.StringIO(output)))
    if len(output.splitlines()) != len(rows):
        return "a raw newline inside a cell"
    formulas = [cell for row in rows for cell in row if FORMULA.match(cell) and not re.fullmatch(r"-?[\d.e+-]+", cell)]
    return problem or (f"{len(formulas)} cell(s) a spreadsheet runs: {formulas[0][:40]!r}" if formulas else None)


def _says(text: str) -> Callable[[str, Path], str | None]:
    return lambda output, folder: None if text in output else f"does not say {text!r}"


def _last_line_says(text: str) -> Callable[[str, Path], str | None]:
    def check(output: str, folder: Path) -> str | None:
        lines = [line for line in output.splitlines() if line.strip()]
        return None if lines and lines[-1].startswith(text) else f"the last line is not {text!r}..."
    return check


def _never_says(text: str) -> Callable[[str, Path], str | None]:
    return lambda output, folder: f"says {text!r}" if text in output else None


def _plain_lines(output: str, folder: Path) -> str | None:
    found = [sequence for sequence in REDRAWS if sequence in output]
    return f"redraws the terminal ({found!r})" if found else None


def _killed_during_the_kvm_probe(python: str) -> Callable[[Path], None]:
    """A runner of the checked code in the middle of the KVM probe, killed with SIGKILL: what it leaves
    stays in folder/tmp (the child's TMPDIR) for `bench clean` to find."""
    def stage(folder: Path) -> None:
        (folder / "tmp").mkdir(exist_ok=True)
        # cwd: `python -c` imports from its working directory first, which must not be a checkout
        child = subprocess.Popen([python, "-c", PROBING], stdout=subprocess.PIPE, text=True, cwd=folder / "tmp",
                                 env={**os.environ, "TMPDIR": str(folder / "tmp")})
        try:
            child.stdout.readline()
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
    return stage


def _probe_folder_removed(output: str, folder: Path) -> str | None:
    left = sorted(path.name for path in (folder / "tmp").glob("layerbench-kvm-probe-*"))
    if left:
        return f"left {left[0]} (answer: {output.strip().splitlines()[-1] if output.strip() else 'nothing'})"
    return "a literal \\n in its lines" if "\\n" in output else None


def issue22_cases(folder: Path, python: str) -> dict[str, Case]:
    """name -> case; the stored runs and scenario files they read are written into folder."""
    nope = folder / "nope-image.yaml"
    nope.write_text('name: nope\napp: {image: "nope/x:1", port: 8080, path: /}\nsetups: [bare, container]\n'
                    'workloads: [hello]\n')
    skipped = folder / "all-skipped.yaml"
    skipped.write_text("name: skipped\nsetups: [{vm: {kernel: /nonexistent/bzImage}}]\nworkloads: [hello]\n")
    base, new = _stored_run(folder, "base"), _stored_run(folder, "new")
    failed_base = _stored_run(folder, "failed-base", _every_trial_failed)
    no_pss = [_stored_run(folder, name, _pss_unreadable) for name in ("no-pss-a", "no-pss-b")]
    hostile = _stored_run(folder, "hostile", _hostile_texts)
    out = ["--out", str(folder / "results"), "--no-report"]
    return {
        "image not present (bare, container)": Case(["run", str(nope), *out], 1, one_line=True,
                                                    check=_says("nope/x:1 is not present locally")),
        # A run that starts (a run folder, each setup prepared, the summary): not the 2 s of a file refused.
        "every setup skipped (scenario file)": Case(["run", str(skipped), *out], 1, bound_s=5.0,
                                                    check=_last_line_says("error: nothing measured")),
        "gate, baseline all failed": Case(["compare", failed_base, new, "--fail-on", "throughput_rps:-10%",
                                           "--format", "csv"], 5, check=_never_says("gate passed")),
        "gate, PSS never measured": Case(["compare", *no_pss, "--fail-on", "memory_pss_mb:+10%", "--format",
                                          "json"], 5, check=_never_says("gate passed")),
        "malformed --fail-on": Case(["compare", base, new, "--fail-on", "throughput_rps", "--out",
                                     str(folder / "page")], 1, one_line=True),
        "markdown export, ESC and BEL": Case(["show", hostile, "--format", "markdown"], 0, check=_no_controls),
        "csv export, formulas, newline, ESC": Case(["show", hostile, "--format", "csv"], 0, check=_csv_neutral),
        "NO_COLOR on a terminal (real run)": Case(["run", "--setups", "bare", "--workloads", "hello", "--duration",
                                                   "0.3", "--warmup", "0", "--repeat", "2", *out], 0,
                                                  check=_plain_lines, env={"NO_COLOR": "1", "TERM": "xterm"},
                                                  terminal=True, bound_s=15.0),
        "bench clean after kill -9 in KVM probe": Case(["clean"], 0, check=_probe_folder_removed,
                                                       env={"TMPDIR": str(folder / "tmp")},
                                                       before=_killed_during_the_kvm_probe(python)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default=shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench",
                        help="the bench executable to try (default: this venv's)")
    parser.add_argument("--max-memory-mb", type=int, default=2048, help="address-space limit per child")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a child is killed")
    parser.add_argument("--only", default="", help="only the cases whose name contains this text")
    args = parser.parse_args(argv)
    python = str(Path(args.bench).parent / "python")  # the checked checkout's interpreter
    failures = 0
    with tempfile.TemporaryDirectory(prefix="layerbench-hostile-") as folder:
        stop = threading.Event()
        print(f"{'input':40} {'wall s':>7} {'RSS MB':>7} {'exit':>5}  answer")
        scenario_cases = {name: Case([path], 1, one_line=True) for name, path in cases(Path(folder)).items()}
        chosen = {**scenario_cases, **issue22_cases(Path(folder), python)}
        for name, case in ((name, case) for name, case in chosen.items() if args.only in name):
            if name in WRITERS:
                threading.Thread(target=_endless_writer, args=(case.args[0], stop, *WRITERS[name]),
                                 daemon=True).start()
            command = [args.bench, *case.args]
            if name in scenario_cases:
                command = [args.bench, "run", case.args[0], "--out", str(Path(folder) / "results"), "--no-report"]
            if case.before is not None:
                case.before(Path(folder))
            env = {**os.environ, **case.env} if case.env else None
            wall_s, rss_mb, status, text = run_one(command, args.max_memory_mb, args.timeout, env, case.terminal)
            lines = [line for line in text.splitlines() if line.strip()]
            answer = "KILLED at the timeout" if status is None else (lines[-1] if lines else "(nothing)")
            problem = None if status is None or case.check is None else case.check(text, Path(folder))
            ok = (status == case.status and wall_s <= case.bound_s and rss_mb <= RSS_BOUND_MB
                  and (len(lines) == 1 or not case.one_line) and "Traceback" not in text and problem is None)
            failures += not ok
            shown = repr(answer)[1:-1] if any(not ch.isprintable() for ch in answer) else answer
            print(f"{name:40} {wall_s:7.2f} {rss_mb:7.0f} {status if status is not None else '-':>5}  "
                  f"{'' if ok else 'FAIL '}{(problem + ': ' if problem else '')}{shown}"[:200])
        stop.set()
    print(f"{failures} input(s) not answered as expected (exit status, one line where an error, {RSS_BOUND_MB} MB, "
          f"{TIME_BOUND_S:g} s but for the cases that start a run)" if failures
          else f"every input answered as expected within its time bound and {RSS_BOUND_MB} MB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
