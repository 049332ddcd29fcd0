"""Run `bench run <file>` (the real command line, in a child process) on hostile scenario inputs and
print each one's wall time, peak RSS and answer. Issue 11 asks: any input answered within 2 s and
300 MB of RSS, with one line and no traceback.

    .venv/bin/python scripts/hostile_input_check.py
    .venv/bin/python scripts/hostile_input_check.py --bench /work/main/.venv/bin/bench  # another checkout

Each child runs under an address-space limit (--max-memory-mb) and a timeout, so measuring an
older checkout that reads /dev/zero to the end cannot take the machine down with it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

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
    big = folder / "big.yaml"  # the 50 MB scenario: real YAML, one unknown key at the top
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


def _wait(pid: int, began: float, timeout_s: float):
    """(exit status, or "timeout" after killing its process group; the child's own rusage)."""
    while True:
        done, wait_status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status), usage
        if time.monotonic() - began > timeout_s:
            os.killpg(pid, signal.SIGKILL)
            return "timeout", os.wait4(pid, 0)[2]
        time.sleep(0.01)


def run_one(command: list[str], max_memory_mb: int, timeout_s: float) -> tuple[float, float, int | None, str]:
    """(wall seconds, peak RSS MB, exit status or None if killed at the timeout, output)."""
    def limit():
        memory = max_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        os.setsid()

    with tempfile.TemporaryFile() as output:
        began = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child: the bench command, its output to the temp file
            try:
                limit()
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                os.execvp(command[0], command)
            finally:
                os._exit(127)
        status, usage = _wait(pid, began, timeout_s)
        wall_s = time.monotonic() - began
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    return wall_s, usage.ru_maxrss / 1024, None if status == "timeout" else status, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default=shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench",
                        help="the bench executable to try (default: this venv's)")
    parser.add_argument("--max-memory-mb", type=int, default=2048, help="address-space limit per child")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a child is killed")
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="layerbench-hostile-") as folder:
        stop = threading.Event()
        print(f"{'input':36} {'wall s':>7} {'RSS MB':>7} {'exit':>5}  answer")
        for name, path in cases(Path(folder)).items():
            if name in WRITERS:
                threading.Thread(target=_endless_writer, args=(path, stop, *WRITERS[name]), daemon=True).start()
            command = [args.bench, "run", path, "--out", str(Path(folder) / "results"), "--no-report"]
            wall_s, rss_mb, status, text = run_one(command, args.max_memory_mb, args.timeout)
            lines = [line for line in text.splitlines() if line.strip()]
            answer = "KILLED at the timeout" if status is None else (lines[-1] if lines else "(nothing)")
            ok = (status == 1 and wall_s <= TIME_BOUND_S and rss_mb <= RSS_BOUND_MB and len(lines) == 1
                  and "Traceback" not in text)
            failures += not ok
            print(f"{name:36} {wall_s:7.2f} {rss_mb:7.0f} {status if status is not None else '-':>5}  "
                  f"{'' if ok else 'FAIL '}{answer[:110]}")
        stop.set()
    print(f"{failures} input(s) outside {TIME_BOUND_S:g} s / {RSS_BOUND_MB} MB / one line and exit 1"
          if failures else f"every input answered within {TIME_BOUND_S:g} s and {RSS_BOUND_MB} MB, one line, exit 1")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
