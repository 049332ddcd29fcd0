"""The fleet's playbook (playbooks/fleet.yml) run through ansible-runner, and its events turned into
what a fleet needs per host: each task as it starts, what the host has (the probe), the run's own
progress (the lines each watch of the run brings back), and Ansible's own reason when a host
fails or cannot be reached. One host's failure is its own; Ansible goes on with the others.

Everything Ansible keeps on this machine for one command lives in one private folder,
/tmp/lb-ssh-XXXXXX (bench.fleet.localdirs): ansible-runner's data folder, the ssh master sockets
(ControlPath) and the fetched run folders. Its owner holds a lock on it, so `bench clean` can tell
the folder of a killed command from a live one.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.fleet.ansible_setup import AnsibleMissing, ansible_config, require_ansible  # noqa: F401 (AnsibleMissing: where callers look)

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "fleet.yml"
WAIT_S = 5  # a watch of a run waits this long for news: a quiet host is looked at every 5 s
WATCH_TASK, PROBE_TASK, DOCTOR_TASK = "watch the run", "what the host has", "doctor"


class Listener:
    """What a playbook's events tell, per host; a fleet overrides what it needs."""

    def task(self, host: str, name: str, done: bool) -> None:
        """A task started on the host (done False), or ended well there (done True)."""

    def probe(self, host: str, found: dict) -> None: ...

    def lines(self, host: str, lines: list[str]) -> None: ...

    def doctor(self, host: str, found: dict) -> None: ...


@dataclass
class Outcome:
    """How each host ended one playbook: Ansible's reason for those that failed, the fetched tars."""

    failed: dict[str, str] = field(default_factory=dict)
    fetched: dict[str, Path] = field(default_factory=dict)
    finished: dict[str, dict] = field(default_factory=dict)  # the last watch: {"exit": ...}
    status: str = ""  # ansible-runner's: successful, failed, canceled, timeout


def reason(res: dict, task: str) -> str:
    """Ansible's reason for a failed or unreachable task, on one line, naming the task."""
    message = str(res.get("msg") or "").removeprefix("Task failed: ").strip()
    said = [str(res.get(key) or "").strip() for key in ("stderr", "module_stderr", "stdout")]
    detail = next((text.splitlines()[-1] for text in said if text), "")
    if detail and detail not in message:
        message = f"{message}: {detail}" if message else detail
    return f"{task}: {' '.join((message or 'failed').split())[:400]}"


def watch_result(res: dict) -> dict:
    """One watch's JSON line (bench/fleet/playbooks/files/poll.py); {} when it gave none."""
    lines = [line for line in str(res.get("stdout") or "").splitlines() if line.strip()]
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class Playbook:
    """One ansible-runner run of the fleet playbook over some hosts of an inventory."""

    def __init__(self, inventory, folder, listener: Listener | None = None):
        self.inventory = inventory
        self.folder = folder  # a bench.fleet.localdirs.LocalFolder
        self.listener = listener or Listener()
        self.cancelled = threading.Event()
        self._tasks: dict[str, str] = {}

    def run(self, hosts: list[str], tags: list[str], extravars: dict) -> Outcome:
        """Run the phases `tags` on `hosts`; returns when Ansible is done (or cancelled)."""
        import ansible_runner

        outcome = Outcome()
        fetch_dir = self.folder.path / "fetched"
        for folder in (fetch_dir, self.folder.path / "runner", self.folder.path / "tmp"):
            folder.mkdir(exist_ok=True)
        variables = {"lb_fetch_dir": str(fetch_dir), "lb_wait_s": WAIT_S, "lb_control_python": sys.executable,
                     **extravars}
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               "PYTHONPATH": package_root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "ANSIBLE_CONFIG": ansible_config(self.inventory.explicit),
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.folder.control_dir),
               "ANSIBLE_LOCAL_TEMP": str(self.folder.path / "tmp"),
               "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "True"}
        env["ANSIBLE_PIPELINING"] = os.environ.get("ANSIBLE_PIPELINING", "True")  # fewer round trips
        # A host that vanishes mid-run is noticed within 15 s, not when TCP gives up (an inventory's
        # own ansible_ssh_extra_args replace this for its hosts).
        env["ANSIBLE_SSH_EXTRA_ARGS"] = os.environ.get("ANSIBLE_SSH_EXTRA_ARGS",
                                                       "-o ServerAliveInterval=5 -o ServerAliveCountMax=3")

        def on_event(event: dict) -> bool:
            self._event(event, outcome, fetch_dir)
            return False  # nothing kept on disk: the events are ours to use, not an archive

        result = ansible_runner.run(
            private_data_dir=str(self.folder.path / "runner"), playbook=str(PLAYBOOK),
            inventory=str(self.inventory.path.resolve()), limit=",".join(hosts), tags=",".join(tags),
            extravars=variables, envvars=env, forks=max(5, len(hosts)), event_handler=on_event,
            cancel_callback=self.cancelled.is_set, quiet=True, suppress_output_file=True,
            host_cwd=str(self.folder.path))
        outcome.status = result.status
        if result.status not in ("successful", "failed", "canceled") and not outcome.failed:
            said = (result.stdout.read() if hasattr(result.stdout, "read") else "") or ""
            tail = [line for line in said.splitlines() if line.strip()][-1:] or [f"ansible-playbook {result.status}"]
            for host in hosts:
                outcome.failed.setdefault(host, tail[0][:400])
        for host in hosts:
            if host not in outcome.failed and outcome.status != "canceled" and host not in outcome.finished \
                    and "run" in tags:
                outcome.failed[host] = "Ansible ended without finishing the run here"
        return outcome

    def _event(self, event: dict, outcome: Outcome, fetch_dir: Path) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host, task, res = data.get("host"), str(data.get("task") or ""), data.get("res") or {}
        if not host:
            return
        if kind in ("runner_on_start", "runner_on_ok"):
            self.listener.task(host, task, kind == "runner_on_ok")
        if task == WATCH_TASK and kind in ("runner_retry", "runner_on_ok", "runner_on_failed"):
            found = watch_result(res)
            if found.get("lines"):
                self.listener.lines(host, [str(line) for line in found["lines"]])
            if found.get("finished"):
                outcome.finished[host] = found
        if kind == "runner_on_ok" and task == PROBE_TASK:
            self.listener.probe(host, dict((res.get("ansible_facts") or {}).get("lb") or {}))
        elif kind == "runner_on_ok" and task == DOCTOR_TASK:
            try:
                self.listener.doctor(host, json.loads(str(res.get("stdout") or "").strip().splitlines()[-1]))
            except (ValueError, IndexError):
                outcome.failed[host] = f"doctor: bench doctor --json gave no JSON: {str(res.get('stdout'))[:200]!r}"
        elif kind == "runner_on_ok" and task == "fetch the run folder" and (fetch_dir / f"{host}.tar").is_file():
            outcome.fetched[host] = fetch_dir / f"{host}.tar"
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            outcome.failed.setdefault(host, reason(res, task))
        elif kind == "runner_on_unreachable":
            outcome.failed.setdefault(host, reason(res, task))
