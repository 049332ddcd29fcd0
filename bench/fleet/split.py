"""The client/server split (`--load-from HOST`): the load generator runs on the load host, the
setups and the sampler on the target host, and the app listens on the target's address that the
load host reaches, on that address alone (never 0.0.0.0; the VM's port forward binds it too).

The generator on the load host is `bench load --json` over ssh: one JSON line back with the
LoadResult and every latency (bench.load.wire), so the runner's LoadFn interface is unchanged.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import socket
import time

from bench.errors import LayerbenchError
from bench.fleet.hostsfile import HostEntry
from bench.fleet.remote import RemotePlace
from bench.fleet.ssh import last_line
from bench.load.spec import LoadResult, LoadSpec
from bench.load.wire import result_from_dict, spec_to_dict
from bench.netutil import source_address_toward

LOAD_TIMEOUT_MARGIN_S = 180  # beyond warm-up + duration: spawning generator processes, a busy host
_ROUTE = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(({peer!r}, 9)); " \
         "print(s.getsockname()[0])"


class SplitError(LayerbenchError):
    """A split run cannot be set up safely (no address the load host reaches, one host twice)."""


def resolve_ipv4(entry: HostEntry) -> str:
    """The IPv4 address of a host as this machine reaches it (its `address`, else its name resolved)."""
    if entry.address:
        return entry.address
    try:
        return socket.getaddrinfo(entry.host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, IndexError):
        raise SplitError(f"{entry.name}: cannot resolve {entry.host} to an IPv4 address; "
                         f"set `address:` for it in the hosts file") from None


def checked_listen_address(address: str, target: str, load: str) -> str:
    """The address the app will listen on, refused when it is loopback or every interface."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        raise SplitError(f"{target}: {address!r} is not an IP address to listen on") from None
    if parsed.is_unspecified or parsed.is_loopback or parsed.version != 4:
        raise SplitError(f"{target}: the app would listen on {parsed}, which {load} cannot reach (or which is "
                         f"every interface); set `address:` for {target} in the hosts file")
    return str(parsed)


def listen_address(target: HostEntry, load: HostEntry, target_place: RemotePlace | None,
                   load_place: RemotePlace | None) -> tuple[str, str]:
    """(the address the app listens on at the target, the load host's address): the target's
    source address on its route toward the load host, unless the hosts file names it."""
    if target.name == load.name:
        raise SplitError(f"--load-from {load.name} names the target itself; the load must come from another host")
    if load.is_local:  # the target sees this machine at the client end of its ssh connection
        peer = target_place.ssh.check("echo $SSH_CONNECTION", "find this machine's address").split()[0]
    else:
        peer = resolve_ipv4(load)
    if target.address:
        found = target.address
    elif target.is_local:
        found = source_address_toward(peer)
    else:
        script = _ROUTE.format(peer=peer)
        found = target_place.ssh.check(f"{target.python} -c {shlex.quote(script)}", "find its route to the load host")
    return checked_listen_address(found.strip(), target.name, load.name), peer


class RemoteLoad:
    """A LoadFn (and a relay for a target host) whose generator is `bench load --json` on the load host."""

    def __init__(self, place: RemotePlace, address: str):
        self.place = place
        self.address = address  # where the target's app listens

    def __call__(self, port: int, workload) -> LoadResult:
        from bench.runner import load_spec

        return self.run_spec(port, load_spec(workload, host=self.address), workload.load)

    def run_spec(self, port: int, spec: LoadSpec, generator: str) -> LoadResult:
        """Run `spec` against the target from the load host; RuntimeError (a failed trial) otherwise."""
        command = self.place.bench("load", "--port", str(port), "--spec", json.dumps(spec_to_dict(spec)),
                                   "--generator", generator, "--json")
        timeout_s = spec.warmup_s + spec.duration_s + LOAD_TIMEOUT_MARGIN_S
        began = time.monotonic()
        result = self.place.ssh.run(command, timeout_s=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(self.place.ssh.failure("load", result.returncode, result.stderr))
        lines = result.stdout.decode(errors="replace").strip().splitlines()
        try:
            loaded = result_from_dict(json.loads(lines[-1]))
        except (IndexError, ValueError, KeyError, TypeError):
            raise RuntimeError(f"{self.place.name}: bench load gave no result: {last_line(result.stdout)!r}") from None
        loaded.notes["load_host"] = self.place.name
        loaded.notes["load_call_s"] = round(time.monotonic() - began, 3)
        return loaded


class LocalLoad:
    """The relay's generator when the load host is this machine (`--load-from local`)."""

    def run_spec(self, port: int, spec: LoadSpec, generator: str) -> LoadResult:
        if generator == "wrk":
            from bench.load.wrk import run_wrk

            return run_wrk(port, spec)
        from bench.load.builtin import run_load

        return run_load(port, spec)
