"""`bench hosts check`: for each host, whether Ansible reaches it (ping) and, from layerbench's own
`bench doctor --json` there (installed first when missing: a run would need it anyway), which
setups can run and the one command that fixes each one that cannot. `local` answers here."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.fleet.engine import Listener, Playbook, require_ansible
from bench.fleet.inventory import FleetHost
from bench.fleet.localdirs import LocalFolder


@dataclass
class HostCheck:
    name: str
    target: str
    reachable: bool
    detail: str  # python and install state, or Ansible's reason
    fix: str = ""  # for an unreachable host: what to try
    doctor: dict = field(default_factory=dict)  # bench doctor --json from the host


class _Found(Listener):
    def __init__(self, progress):
        self.progress, self.probes, self.doctors = progress, {}, {}

    def task(self, host, name, done):
        if done and name.startswith(("install", "copy the dependencies")):
            self.progress(f"{host}: {name}: done")

    def probe(self, host, found):
        self.probes[host] = found

    def doctor(self, host, found):
        self.doctors[host] = found


def check_hosts(hosts: list[FleetHost], inventory, progress=lambda message: None) -> list[HostCheck]:
    """Every host checked (the inventory's in one playbook, in parallel), in the order given."""
    from bench.doctor import doctor_report
    from bench.fleet.wheel import build_wheel

    remote = [host.name for host in hosts if not host.is_local]
    found, outcome = _Found(progress), None
    if remote:
        require_ansible()
        wheel = build_wheel()
        with LocalFolder() as folder:
            outcome = Playbook(inventory, folder, found).run(
                remote, ["check"], {"lb_version": wheel.version, "lb_wheel": str(wheel.path), "lb_fleet_id": "-"})
    checks = []
    for host in hosts:
        if host.is_local:
            checks.append(HostCheck(host.name, host.target, True, "this machine", doctor=doctor_report()))
            continue
        probe = found.probes.get(host.name)
        why = outcome.failed.get(host.name)
        if probe is None:
            checks.append(HostCheck(host.name, host.target, False, why or "no answer",
                                    f"check ansible_host, ansible_port, ansible_user and the key for {host.name}; "
                                    f"try: ansible -i {inventory.path} {host.name} -m ping"))
        elif why or host.name not in found.doctors:
            checks.append(HostCheck(host.name, host.target, True, f"python {probe.get('python_full')} as "
                                    f"{probe.get('user')}; layerbench could not answer: {why or 'no doctor report'}"))
        else:
            checks.append(HostCheck(host.name, host.target, True, f"python {probe.get('python_full')} as "
                                    f"{probe.get('user')}, layerbench installed", doctor=found.doctors[host.name]))
    return checks


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
