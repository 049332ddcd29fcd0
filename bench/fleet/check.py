"""`bench hosts check`: for each host, whether it is reachable, which setups can run there, and the
one command that fixes each one that cannot. Remote hosts answer with `bench doctor --json` from
their own layerbench (installed there first when missing: a run would need it anyway)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.errors import LayerbenchError
from bench.fleet.hostsfile import HostEntry
from bench.fleet.remote import RemotePlace
from bench.fleet.ssh import SshSession


@dataclass
class HostCheck:
    name: str
    target: str
    reachable: bool
    detail: str  # python and install state, or why it cannot be reached
    fix: str = ""  # for an unreachable host: what to try
    doctor: dict = field(default_factory=dict)  # bench doctor --json from the host


def _check_remote(place: RemotePlace, entry: HostEntry, wheel_of, progress) -> HostCheck:
    try:
        probe = place.inspect()
    except LayerbenchError as error:
        port = f" -p {entry.port}" if entry.port else ""
        key = f" -i {entry.key}" if entry.key else ""
        return HostCheck(entry.name, entry.target, False, str(error),
                         f"check host, user, port and key in the hosts file; try: ssh{port}{key} "
                         f"{entry.user + '@' if entry.user else ''}{entry.host} true")
    try:
        done = place.prepare(wheel_of(), lambda message: progress(f"{entry.name}: {message}"))
        out = place.ssh.check(place.bench("doctor", "--json"), "bench doctor --json", timeout_s=300)
        doctor = json.loads(out.strip().splitlines()[-1])
    except (LayerbenchError, ValueError, IndexError) as error:
        return HostCheck(entry.name, entry.target, True, f"python {probe.python_full}; layerbench could not "
                         f"answer: {error}")
    return HostCheck(entry.name, entry.target, True, f"python {probe.python_full}, {done}", doctor=doctor)


def check_hosts(entries: list[HostEntry], progress=lambda message: None) -> list[HostCheck]:
    """Every host checked in parallel, in the order given."""
    from bench.doctor import doctor_report
    from bench.fleet.wheel import build_wheel

    lock, built = threading.Lock(), {}

    def wheel_of():
        with lock:
            if "wheel" not in built:
                built["wheel"] = build_wheel()
            return built["wheel"]

    with SshSession() as session:
        def one(entry: HostEntry) -> HostCheck:
            if entry.is_local:
                return HostCheck(entry.name, entry.target, True, "this machine", doctor=doctor_report())
            return _check_remote(RemotePlace(session.to(entry)), entry, wheel_of, progress)

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(entries)))) as pool:
            return list(pool.map(one, entries))


def check_lines(check: HostCheck) -> list[tuple[str, str]]:
    """(style, line) to print for one host: reachability, then each setup and each optional tool."""
    if not check.reachable:
        return [("red", f"{check.name}  unreachable ({check.target}): {check.detail}"),
                ("yellow", f"      fix: {check.fix}")]
    lines = [("green", f"{check.name}  reachable ({check.target}): {check.detail}")]
    for setup in check.doctor.get("setups", []):
        if setup.get("ok"):
            lines.append(("", f"  ok  {setup.get('setup'):10} {setup.get('stack', '')}"))
        else:
            lines.append(("red", f"  no  {setup.get('setup'):10} on {check.name}: {setup.get('reason')}"))
    for broken in check.doctor.get("broken", []):
        lines.append(("red", f"  no  {broken.get('module')}: setup module failed to load: {broken.get('problem')}"))
    for tool in check.doctor.get("tools", []):
        if not tool.get("path"):
            lines.append(("yellow", f"  --  {tool.get('tool'):10} optional, not installed on {check.name}: "
                                    f"{tool.get('fix')}"))
    return lines
