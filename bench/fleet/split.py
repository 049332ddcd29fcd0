"""The client/server split (`--load-from HOST`): the load generator runs on the load host, the
setups and the sampler on the target host, and the app listens on the target's address that the
load host reaches, on that address alone (never 0.0.0.0; the VM's port forward binds it too).

Ansible installs layerbench on both hosts (the playbook's prepare phase) and, for a remote target,
fetches its run folder and cleans up afterwards (finish). In between, the trials run over two
direct ssh channels (bench.fleet.channel): the target's `bench remote-run`, whose load requests
this machine relays, and the load host's `bench load --serve`. No key ever leaves this machine.
`--load-from local` is this machine's own generator: no ssh at all.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import socket
import subprocess
from pathlib import Path

from bench import machine
from bench.errors import LayerbenchError
from bench.events import ProgressFn, SplitAnnounced
from bench.fleet.channel import LoadServer, open_channel, ssh_argv
from bench.fleet.inventory import LOCAL_HOST, FleetHost
from bench.load.spec import LoadResult, LoadSpec
from bench.netutil import LOOPBACK, source_address_toward
from bench.results import now_iso

_ROUTE = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(({peer!r}, 9)); " \
         "print(s.getsockname()[0])"


class SplitError(LayerbenchError):
    """A split run cannot be set up safely (no address the load host reaches, one host twice)."""


def checked_listen_address(address: str, target: str, load: str) -> str:
    """The address the app will listen on, refused when it is loopback or every interface."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        raise SplitError(f"{target}: {address!r} is not an IP address to listen on") from None
    if parsed.is_unspecified or parsed.is_loopback or parsed.version != 4:
        raise SplitError(f"{target}: the app would listen on {parsed}, which {load} cannot reach (or which is "
                         f"every interface); set layerbench_address for {target} in the inventory")
    return str(parsed)


def resolve_ipv4(host: FleetHost, rendered: dict) -> str:
    """The IPv4 address of a host as this machine reaches it (layerbench_address, else ansible_host resolved)."""
    if host.address:
        return host.address
    name = str(rendered.get("ansible_host") or host.name)
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, IndexError):
        raise SplitError(f"{host.name}: cannot resolve {name} to an IPv4 address; set layerbench_address for it "
                         "in the inventory") from None


class Remote:
    """A host of the split as the direct channel reaches it: its inventory vars and what the probe found."""

    def __init__(self, host: FleetHost, inventory, probe: dict):
        self.host, self.name, self.probe = host, host.name, probe
        self.rendered = inventory.rendered(host.name)

    def argv(self, command: str) -> list[str]:
        return ssh_argv(self.name, self.rendered, command)

    def check(self, command: str, step: str, timeout_s: float = 60) -> str:
        """A one-shot command's stdout; SplitError naming the host and the step otherwise."""
        try:
            done = subprocess.run(self.argv(command), capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SplitError(f"{self.name}: {step}: no answer within {timeout_s:.0f} s") from None
        if done.returncode != 0:
            said = [line for line in done.stderr.decode(errors="replace").splitlines() if line.strip()]
            raise SplitError(f"{self.name}: {step} failed (exit {done.returncode}){': ' + said[-1] if said else ''}")
        return done.stdout.decode(errors="replace")

    def bench(self, *args: str) -> str:
        return f"cd && exec {shlex.quote(self.probe['venv'])}/bin/python -m bench {shlex.join(args)}"


def addresses(target: FleetHost, load: FleetHost, target_remote: Remote | None,
              load_remote: Remote | None) -> tuple[str, str]:
    """(the address the app listens on at the target, the load host's address): the target's
    source address on its route toward the load host, unless the inventory names it."""
    if target.name == load.name:
        raise SplitError(f"--load-from {load.name} names the target itself; the load must come from another host")
    if load.is_local:  # the target sees this machine at the client end of its ssh connection
        peer = target_remote.check("echo $SSH_CONNECTION", "find this machine's address").split()[0]
    else:
        peer = resolve_ipv4(load, load_remote.rendered)
    if target.address:
        found = target.address
    elif target.is_local:
        found = source_address_toward(peer)
    else:
        python = str(target_remote.rendered.get("layerbench_python") or "python3")
        found = target_remote.check(f"{python} -c {shlex.quote(_ROUTE.format(peer=peer))}",
                                    "find its route to the load host")
    return checked_listen_address(found.strip(), target.name, load.name), peer


def announcement(split: dict, target: str) -> str:
    """The line every split run prints first: the loopback-only rule is relaxed, and where."""
    return (f"split run: the app on {target} listens on {split['listen_address']} only (the address "
            f"{split['load_host']} reaches; not {LOOPBACK}, not every interface); load from {split['load_host']} "
            f"({split['load_address']})")


class LocalLoad:
    """The load from this machine's own generator (`--load-from local`, and `bench load --serve`)."""

    name = "local"

    def run_spec(self, port: int, spec: LoadSpec, generator: str) -> LoadResult:
        if generator == "wrk":
            from bench.load.wrk import run_wrk

            return run_wrk(port, spec)
        from bench.load.builtin import run_load

        return run_load(port, spec)

    def describe(self) -> dict:
        return machine.describe()

    def close(self) -> None:
        pass


class RemoteLoad(LoadServer):
    """The load host's `bench load --serve`; its first line describes its machine."""

    def __init__(self, remote: Remote):
        super().__init__(remote.name, remote.argv(remote.bench("load", "--serve")))
        try:
            hello = self._read_line(120)
            self.machine = json.loads(hello)["machine"]
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            self.close()
            raise SplitError(f"{remote.name}: bench load --serve did not start: {str(error)[:200]}") from None

    def describe(self) -> dict:
        return self.machine


def prepare(fleet, target: FleetHost, load: FleetHost) -> tuple[dict, object, Remote | None]:
    """Install on the remote ends, find the addresses, start the load; (split record, load, target's Remote)."""
    remote = [host.name for host in (target, load) if not host.is_local]
    fleet.update(load.name, status="preparing", started_at=now_iso())
    if remote:
        outcome = fleet.playbook().run(remote, ["prepare"], fleet.extravars())
        for name, why in outcome.failed.items():
            raise SplitError(f"{name}: {why}")
    target_remote = None if target.is_local else Remote(target, fleet.inventory, fleet.probes[target.name])
    load_remote = None if load.is_local else Remote(load, fleet.inventory, fleet.probes[load.name])
    address, peer = addresses(target, load, target_remote, load_remote)
    relay = LocalLoad() if load_remote is None else RemoteLoad(load_remote)
    split = {"load_host": load.name, "load_target": load.target, "load_address": peer, "listen_address": address,
             "load_machine": relay.describe()}
    fleet.update(load.name, status="complete", finished_at=now_iso())
    fleet.set_split({key: value for key, value in split.items() if key != "load_machine"})
    fleet.emit(SplitAnnounced(announcement(split, target.name if not target.is_local else "this machine"),
                              host=target.name))
    return split, relay, target_remote


def run_split_target(fleet, target: FleetHost, load: FleetHost) -> None:
    """A fleet's one target, its load from `load`: prepared by Ansible, run over the direct channel."""
    run = fleet.runs[target.name]
    try:
        split, relay, target_remote = prepare(fleet, target, load)
    except (LayerbenchError, OSError) as error:
        fleet.update(load.name, status="failed", error=str(error), finished_at=now_iso())
        fleet.update(target.name, status="failed", error=f"the split could not be set up: {error}",
                     finished_at=now_iso())
        return
    run.relay, run.listen_address = relay, split["listen_address"]
    extra = {"listen_address": split["listen_address"], "relay_load": True, "split": split}
    try:
        if target.is_local:
            fleet.run_local(extra)
            return
        folder = f"{target_remote.probe['base']}/runs/{fleet.fleet_id}"
        command = (f"mkdir -p {shlex.quote(folder)} && cd {shlex.quote(folder)} && exec "
                   f"{shlex.quote(target_remote.probe['venv'])}/bin/python -m bench remote-run - --out .")
        fleet.update(target.name, status="running", started_at=now_iso())
        process = open_channel(target_remote.argv(command))
        run.stop_argv = target_remote.argv(f"touch {shlex.quote(folder)}/stop")
        process.stdin.write(json.dumps(fleet.job(extra)).encode() + b"\n")
        process.stdin.flush()
        run.stream(process)
    finally:
        relay.close()
    outcome = fleet.playbook().run([target.name], ["finish"], fleet.extravars())
    fleet.bring_home(target.name, outcome)


def split_here(scenario, load: FleetHost, inventory, out: Path, progress: ProgressFn, command_line: list[str],
               say=lambda line: None) -> Path:
    """A split run with this machine as the target: the ordinary Runner, its load from `load`."""
    from bench.fleet.engine import Listener, Playbook, require_ansible
    from bench.fleet.localdirs import LocalFolder
    from bench.fleet.wheel import build_wheel
    from bench.runner import Runner

    if load.is_local:
        raise SplitError("--load-from local needs a remote target (--hosts NAME): without one, this machine is the "
                         "target, and a load from this machine is a plain `bench run` over loopback")
    require_ansible()
    probes: dict[str, dict] = {}

    class Said(Listener):
        def task(self, host, name, done):
            if done and name.startswith(("install", "copy the dependencies")):
                say(f"{host}: {name}: done")

        def probe(self, host, found):
            probes[host] = found

    wheel = build_wheel()
    with LocalFolder() as folder:
        outcome = Playbook(inventory, folder, Said()).run(
            [load.name], ["prepare"], {"lb_version": wheel.version, "lb_wheel": str(wheel.path), "lb_fleet_id": "-"})
        if outcome.failed:
            raise SplitError(f"{load.name}: {outcome.failed[load.name]}")
    remote = Remote(load, inventory, probes[load.name])
    address, peer = addresses(LOCAL_HOST, load, None, remote)
    relay = RemoteLoad(remote)
    try:
        split = {"load_host": load.name, "load_target": load.target, "load_address": peer, "listen_address": address,
                 "load_machine": relay.describe()}
        say(announcement(split, "this machine"))

        def load_fn(port: int, workload) -> LoadResult:
            from bench.runner import load_spec

            return relay.run_spec(port, load_spec(workload, host=address), workload.load)

        return Runner(scenario, out, progress, command_line, load=load_fn, address=address, split=split).run()
    finally:
        relay.close()
