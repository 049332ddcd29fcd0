"""A direct ssh channel to one host of the inventory, for the timing-critical part of a split run:
the target's run talking to this machine on stdin/stdout (its load requests), and the load
host's generator serving one trial after another (`bench load --serve`).

Why not Ansible here: a task costs a connection round trip, a module start and a result, and an
Ansible task can neither stream nor be answered while it runs. A trial's load must start the
moment the target's app is ready, so each of the two hosts gets one long-lived ssh process for
the whole run, started with the connection settings the inventory resolves for it (as
`ansible-inventory --host` shows them): host, port, user, key, the ssh args, and become (sudo).
"""

from __future__ import annotations

import json
import select
import shlex
import subprocess
import time

from bench.errors import LayerbenchError
from bench.load.spec import LoadResult, LoadSpec
from bench.load.wire import result_from_dict, spec_to_dict

BASE_OPTIONS = ("BatchMode=yes", "ConnectTimeout=10", "ServerAliveInterval=5", "ServerAliveCountMax=3")
LOAD_TIMEOUT_MARGIN_S = 120  # beyond warm-up + duration: spawning generator processes, a busy host


class ChannelError(LayerbenchError):
    """The direct channel cannot be opened the way the inventory says (e.g. a password login)."""


def ssh_argv(name: str, rendered: dict, command: str) -> list[str]:
    """ssh's argv that runs the shell `command` on the host as its inventory vars say, become included."""
    if rendered.get("ansible_password") or rendered.get("ansible_ssh_pass"):
        raise ChannelError(f"{name}: a split run talks to its hosts over plain ssh, which cannot type a password; "
                           "give the host a key (ansible_ssh_private_key_file) or an ssh agent")
    argv = ["ssh", *[word for option in BASE_OPTIONS for word in ("-o", option)]]
    user = rendered.get("ansible_user") or rendered.get("ansible_ssh_user")
    port = rendered.get("ansible_port") or rendered.get("ansible_ssh_port")
    key = rendered.get("ansible_ssh_private_key_file") or rendered.get("ansible_private_key_file")
    if user:
        argv += ["-l", str(user)]
    if port:
        argv += ["-p", str(int(port))]
    if key:
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    for var in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        argv += shlex.split(str(rendered.get(var) or ""))
    if _truthy(rendered.get("ansible_become")):
        method = str(rendered.get("ansible_become_method") or "sudo")
        if method != "sudo":
            raise ChannelError(f"{name}: become method {method!r}: a split run's direct channel becomes with sudo only")
        if rendered.get("ansible_become_password") or rendered.get("ansible_become_pass"):
            raise ChannelError(f"{name}: a split run's direct channel needs sudo without a password (sudo -n)")
        user_to = str(rendered.get("ansible_become_user") or "root")
        command = f"sudo -n -H -u {shlex.quote(user_to)} -- sh -c {shlex.quote(command)}"
    return [*argv, "--", str(rendered.get("ansible_host") or name), command]


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on") if value is not None else False


def open_channel(argv: list[str]) -> subprocess.Popen:
    """The long-lived ssh process, stdin/stdout/stderr as pipes (bytes)."""
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class LoadServer:
    """The load host's `bench load --serve` over one ssh process: one JSON line per trial each way."""

    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.process = open_channel(argv)

    def run_spec(self, port: int, spec: LoadSpec, generator: str) -> LoadResult:
        """Run `spec` against the target from the load host; RuntimeError (a failed trial) otherwise."""
        began = time.monotonic()
        request = {"port": port, "spec": spec_to_dict(spec), "generator": generator}
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RuntimeError(f"{self.name}: the load host's channel is closed: {self._said()}") from None
        line = self._read_line(spec.warmup_s + spec.duration_s + LOAD_TIMEOUT_MARGIN_S)
        try:
            reply = json.loads(line)
        except ValueError:
            raise RuntimeError(f"{self.name}: bench load gave no result: {line[:200]!r}") from None
        if reply.get("kind") != "load_result":
            raise RuntimeError(f"{self.name}: {reply.get('message') or 'the load failed'}")
        loaded = result_from_dict(reply["result"])
        loaded.notes["load_host"] = self.name
        loaded.notes["load_call_s"] = round(time.monotonic() - began, 3)
        return loaded

    def _read_line(self, timeout_s: float) -> str:
        readable, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not readable:
            raise RuntimeError(f"{self.name}: no load result within {timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: the load host's channel closed: {self._said()}")
        return line.decode(errors="replace").strip()

    def _said(self) -> str:
        try:
            self.process.wait(timeout=5)  # its stdout closed: it is ending
        except subprocess.TimeoutExpired:
            return "no message"
        tail = [line for line in self.process.stderr.read().decode(errors="replace").splitlines() if line.strip()]
        return tail[-1][:300] if tail else f"ssh exited {self.process.returncode}"

    def close(self) -> None:
        """End the server (EOF on its stdin), then the ssh process."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            pipe.close()
