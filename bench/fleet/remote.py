"""The places a fleet runs on: another host over ssh, or this machine. Each can be prepared
(layerbench installed), start `bench remote-run` on a job, stop it, and hand its run folder home.

On a host everything lives under ~/.cache/layerbench/fleet: the wheels, one venv per Python
version (reused while it holds the same layerbench version), and the runs of a fleet until
they are fetched.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.fleet.hostsfile import HostEntry
from bench.fleet.ssh import CONNECTION_LOST, RemoteError, Ssh
from bench.fleet.wheel import DIST_NAME, Wheel
from bench.fleet.wheelhouse import Interpreter, wheelhouse_for

BASE = ".cache/layerbench/fleet"  # relative to the login's home, where ssh starts
VERSION_FILE = ".layerbench-version"
MIN_PYTHON = (3, 11)
PROBE = """import json, os, platform, sys
version = "%d.%d" % sys.version_info[:2]
try:
    installed = open(os.path.join(BASE, "venv-" + version, MARK)).read().strip()
except OSError:
    installed = ""
print(json.dumps({"python": version, "python_full": platform.python_version(), "glibc": platform.libc_ver()[1],
                  "arch": platform.machine(), "installed": installed, "hostname": platform.node()}))
"""


@dataclass(frozen=True)
class Probe:
    """What a host has: its Python, glibc and CPU, and the layerbench version in its venv."""

    python: str
    python_full: str
    glibc: str
    arch: str
    installed: str
    hostname: str

    @property
    def venv(self) -> str:
        return f"{BASE}/venv-{self.python}"


class RemotePlace:
    """A host of the hosts file, reached over ssh."""

    def __init__(self, ssh: Ssh):
        self.ssh = ssh
        self.name = ssh.name
        self.probe: Probe | None = None

    def inspect(self) -> Probe:
        """Reach the host and read its Python; RemoteError when it is unreachable or too old."""
        python = self.ssh.entry.python
        script = PROBE.replace("BASE", repr(f"{BASE}")).replace("MARK", repr(VERSION_FILE))
        out = self.ssh.check(f"cd && {python} -c {shlex.quote(script)}", "probe (is it reachable?)", timeout_s=60)
        try:
            probe = Probe(**json.loads(out.strip().splitlines()[-1]))
        except (ValueError, TypeError, IndexError):
            raise RemoteError(f"{self.name}: {python} did not answer the probe: {out.strip()[:200]!r}") from None
        if tuple(int(part) for part in probe.python.split(".")) < MIN_PYTHON:
            raise RemoteError(f"{self.name}: {python} is {probe.python_full}; layerbench needs 3.11 or newer "
                              f"(set `python:` for {self.name} in the hosts file)")
        self.probe = probe
        return probe

    def prepare(self, wheel: Wheel, progress) -> str:
        """Install this layerbench there unless its venv already holds it; what was done, in words."""
        probe = self.probe or self.inspect()
        if probe.installed == wheel.version:
            return f"layerbench {wheel.version} already installed"
        wheelhouse = wheelhouse_for(wheel, Interpreter(probe.python, probe.glibc or "2.17", probe.arch), progress)
        present = set(self.ssh.check(f"cd && mkdir -p {BASE}/wheels && ls {BASE}/wheels", "list wheels").split())
        missing = sorted(path.name for path in wheelhouse.glob("*.whl") if path.name not in present)
        progress(f"copying {len(missing) + (wheel.path.name not in present)} wheel(s), installing layerbench "
                 f"{wheel.version} into ~/{probe.venv}")
        self.ssh.send([(wheelhouse, missing), (wheel.path.parent, [wheel.path.name] if wheel.path.name not in present
                                               else [])], f"{BASE}/wheels", "copy wheels")
        pip = next(wheelhouse.glob("pip-*.whl")).name
        self.ssh.check(
            f"cd && set -e; [ -x {probe.venv}/bin/python ] || {self.ssh.entry.python} -m venv --without-pip "
            f"{probe.venv}; {probe.venv}/bin/python {BASE}/wheels/{pip}/pip install --quiet "
            f"--disable-pip-version-check --no-index --find-links {BASE}/wheels "
            f"{shlex.quote(f'{DIST_NAME}=={wheel.version}')}; echo {shlex.quote(wheel.version)} > "
            f"{probe.venv}/{VERSION_FILE}", "install", timeout_s=1200)
        self.probe = Probe(**{**probe.__dict__, "installed": wheel.version})
        return f"installed layerbench {wheel.version}"

    def bench(self, *args: str) -> str:
        """The shell command that runs `bench ARGS` from the venv there."""
        return f"cd && PYTHONUNBUFFERED=1 exec {self.probe.venv}/bin/python -m bench {shlex.join(args)}"

    def start(self, fleet_id: str, job: dict) -> subprocess.Popen:
        folder = f"{BASE}/runs/{fleet_id}"
        self.ssh.check(f"cd && mkdir -p {folder} && cat > {folder}/job.json", "send the job",
                       input=json.dumps(job).encode())
        return self.ssh.popen(self.bench("remote-run", f"{folder}/job.json", "--out", folder), stdin=subprocess.PIPE)

    def stop(self, pid: int) -> None:
        """SIGTERM to the remote runner: it stops like Ctrl-C, removing what it started."""
        self.ssh.run(f"kill -TERM {int(pid)}", timeout_s=30)

    def fetch(self, fleet_id: str, run_id: str, destination: Path) -> Path:
        temp = destination.with_name(f".{destination.name}.fetching")
        shutil.rmtree(temp, ignore_errors=True)
        fetched = self.ssh.fetch(f"{BASE}/runs/{fleet_id}", run_id, temp, "fetch the run folder")
        fetched.rename(destination)
        temp.rmdir()
        return destination

    def forget(self, fleet_id: str) -> None:
        """Remove the fleet's folder there (its run folder is home by now)."""
        self.ssh.run(f"cd && rm -rf {BASE}/runs/{shlex.quote(fleet_id)}", timeout_s=60)

    def lost(self, returncode: int | None) -> bool:
        return returncode == CONNECTION_LOST


class LocalPlace:
    """This machine: the same `bench remote-run`, as a child process of this interpreter."""

    def __init__(self, entry: HostEntry, workdir: Path):
        self.name = entry.name
        self.workdir = workdir

    def inspect(self) -> None:
        return None

    def prepare(self, wheel: Wheel | None, progress) -> str:
        return "this machine: runs from this checkout"

    def start(self, fleet_id: str, job: dict) -> subprocess.Popen:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "job.json").write_text(json.dumps(job))
        command = [sys.executable, "-m", "bench", "remote-run", str(self.workdir / "job.json"), "--out", str(self.workdir)]
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def stop(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def fetch(self, fleet_id: str, run_id: str, destination: Path) -> Path:
        (self.workdir / run_id).rename(destination)
        return destination

    def forget(self, fleet_id: str) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def lost(self, returncode: int | None) -> bool:
        return False
