"""Test hosts made on this machine: containers with their own sshd (and Docker engine, when asked).

    with start_hosts(2, docker=True, ports={"lab2": 2222}) as hosts:
        hosts[0].ssh("true")                      # or: ssh -F hosts[0].ssh_config lab1 true
        write_inventory(hosts, path, become={"lab1"})   # an Ansible inventory, group `labs`

Each host is a container of the test-host image (tests/testhost_image.py) on a user-defined
Docker network of its own, reached at its own address; sshd (on port 22 or the one asked for)
logs in user `lab` with a key pair made for this session; `lab` may sudo to root without a
password, which Ansible's become uses. Everything a session creates carries the label `layerbench-testhost=<session>`
(not `layerbench`, so other tests' leftover checks ignore it) and is removed on the way out, also
after Ctrl-C. Manual use: `python -m tests.testhosts up 2 --docker` (scripts/testhosts.sh).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.testhost_image import LABEL, PACKAGES, USER, WITH_QEMU, LabError, build_image, remove_images

PID_LABEL = f"{LABEL}.pid"  # the process that owns a session: `clean` removes sessions whose owner died
READY_TIMEOUT_S = 90
# What an engine inside a container needs on this kernel. --privileged fails ("unable to apply
# caps: operation not permitted": CAP_SYS_RESOURCE is not in the bounding set). SYS_ADMIN lets the
# host remount its cgroups writable; NET_ADMIN lets dockerd make its bridge and iptables chains;
# Docker's default seccomp profile refuses keyctl, so runc inside fails with "unable to join
# session keyring" unless seccomp is off for the host container.
DOCKERD_FLAGS = ("--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined")


@dataclass(frozen=True)
class LabHost:
    name: str  # the ssh alias in ssh_config: lab1, lab2, ...
    address: str  # the container's address on the session's network
    container: str
    session: str
    docker: bool  # runs its own dockerd
    port: int  # sshd's port
    ssh_config: Path
    identity: Path

    def ssh_argv(self, command: str, *options: str) -> list[str]:
        """The argv that runs `command` on this host through the system's OpenSSH client."""
        return ["ssh", "-F", str(self.ssh_config), *options, self.name, command]

    def ssh(self, command: str, timeout_s: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """Run `command` on the host; its output as text."""
        return subprocess.run(self.ssh_argv(command), capture_output=True, text=True, timeout=timeout_s,
                              check=check, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def start_hosts(count: int, docker: bool = False, packages: tuple[str, ...] = PACKAGES,
                progress=lambda message: None, ports: dict[str, int] | None = None,
                image: str | None = None) -> Iterator[list[LabHost]]:
    """Start `count` hosts of `image` (default: the test-host image of `packages`; with their own
    dockerd when `docker`; sshd on `ports[name]`, else 22), yield them ready for ssh, remove all."""
    ports = ports or {}
    tag = image or build_image(packages, progress=progress).tag
    session = f"lbth-{os.getpid()}-{secrets.token_hex(3)}"
    keydir = Path(tempfile.mkdtemp(prefix=f"{session}-"))
    try:
        identity = _make_key(keydir)
        # --internal: no way out of the network, so hosts are offline like the ones a fleet run
        # installs on (without it they reach whatever this machine reaches).
        network = _docker("network", "create", "--internal", "--label", f"{LABEL}={session}", "--label",
                          f"{PID_LABEL}={os.getpid()}", f"{session}-net")
        progress(f"session {session}: network {network[:12]}, starting {count} host(s)")
        names = [f"lab{index}" for index in range(1, count + 1)]
        containers = [_run_host(tag, session, name, identity, docker, ports.get(name, 22)) for name in names]
        hosts = [LabHost(name, _address(container, session), container, session, docker, ports.get(name, 22),
                         keydir / "ssh_config", identity) for name, container in zip(names, containers)]
        write_ssh_config(hosts, keydir / "ssh_config")
        for host in hosts:
            _wait_ready(host)
        yield hosts
    finally:
        stop_hosts(session, keydir)


def write_ssh_config(hosts: list[LabHost], path: Path) -> None:
    """An OpenSSH client config with one `Host` block per host; a master connection per host for speed."""
    blocks = [f"""Host {host.name}
    HostName {host.address}
    Port {host.port}
    User {USER}
    IdentityFile {host.identity}
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 5
    ServerAliveInterval 5
    ServerAliveCountMax 3
    ControlMaster auto
    ControlPath {path.parent}/cm-%C
    ControlPersist 120
""" for host in hosts]
    path.write_text("\n".join(blocks))


def write_inventory(hosts: list[LabHost], path: Path, group: str = "labs", become: set[str] | frozenset = frozenset(),
                    names: dict[str, str] | None = None) -> Path:
    """An Ansible inventory (YAML) with these hosts in `group`; the hosts in `become` run as root
    through sudo (Ansible's become); `names` renames some.

    Host keys are made fresh at every start and addresses come back in later sessions, so the
    inventory tells ssh not to keep or check them (test hosts only: they live on an internal network)."""
    import yaml

    names = names or {}
    members = {}
    for host in hosts:
        entry = {"ansible_host": host.address}
        if host.port != 22:
            entry["ansible_port"] = host.port
        if host.name in become:
            entry["ansible_become"] = True
        members[names.get(host.name, host.name)] = entry
    inventory = {"all": {"vars": {"ansible_user": USER, "ansible_ssh_private_key_file": str(host.identity),
                                  "ansible_python_interpreter": "/usr/bin/python3",
                                  "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                                                             "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"},
                         "children": {group: {"hosts": members}}}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def kill(host: LabHost) -> None:
    """Kill the host's container at once (SIGKILL), as a host that dies mid-run."""
    _docker("kill", host.container)


def stop_hosts(session: str, keydir: Path | None = None) -> list[str]:
    """Remove a session's containers, volumes, network and keys; what was removed. Ignores Ctrl-C meanwhile."""
    with _no_interrupts():
        if keydir is not None and (keydir / "ssh_config").exists():
            _close_masters(keydir / "ssh_config")
        removed = _remove_labelled(f"{LABEL}={session}")
        if keydir is not None:
            shutil.rmtree(keydir, ignore_errors=True)
        return removed


def leftovers(session: str | None = None) -> list[str]:
    """Containers, volumes and networks with the test-host label (one session's, or any)."""
    label = f"{LABEL}={session}" if session else LABEL
    found = []
    for kind in ("container", "volume", "network"):
        listing = ["container", "ls", "--all"] if kind == "container" else [kind, "ls"]
        names = _docker(*listing, "--quiet", "--filter", f"label={label}").split()
        found += [f"{kind} {name}" for name in names]
    return found


def clean_leftovers(include_live: bool = False) -> list[str]:
    """Remove sessions whose owning process is gone (all sessions with include_live)."""
    sessions = {}
    for kind in ("container", "volume", "network"):
        listing = ["container", "ls", "--all"] if kind == "container" else [kind, "ls"]
        lines = _docker(*listing, "--filter", f"label={LABEL}", "--format",
                        f'{{{{.Label "{LABEL}"}}}} {{{{.Label "{PID_LABEL}"}}}}').splitlines()
        for line in lines:
            session, _, pid = line.partition(" ")
            sessions[session] = pid
    removed = []
    for session, pid in sessions.items():
        if include_live or not (pid.isdigit() and _alive(int(pid))):
            # A killed owner also left its key directory (tempfile.mkdtemp(prefix=session + "-")).
            for keydir in Path(tempfile.gettempdir()).glob(f"{session}-*"):
                removed += stop_hosts(session, keydir) + [f"keys {keydir}"]
            removed += stop_hosts(session)
    return removed


def _run_host(tag: str, session: str, name: str, identity: Path, docker: bool, port: int = 22) -> str:
    container = f"{session}-{name}"
    labels = ["--label", f"{LABEL}={session}", "--label", f"{PID_LABEL}={os.getpid()}"]
    command = ["run", "--detach", "--init", "--name", container, "--hostname", name, "--network", f"{session}-net",
               *labels, "--env", f"TESTHOST_AUTHORIZED_KEY={identity.with_suffix('.pub').read_text().strip()}",
               "--env", f"TESTHOST_SSH_PORT={port}"]
    if docker:
        volume = _docker("volume", "create", *labels, f"{container}-docker")
        command += [*DOCKERD_FLAGS, "--volume", f"{volume}:/var/lib/docker", "--env", "TESTHOST_DOCKERD=1"]
    _docker(*command, tag)
    return container


def _address(container: str, session: str) -> str:
    return _docker("container", "inspect", "--format",
                   f'{{{{(index .NetworkSettings.Networks "{session}-net").IPAddress}}}}', container)


def _wait_ready(host: LabHost) -> None:
    """Until `ssh host true` works; a host whose container exits fails at once with its last log lines."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        probe = subprocess.run(host.ssh_argv("true", "-o", "ConnectTimeout=2", "-o", "ControlMaster=no"),
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if probe.returncode == 0:
            return
        state = _docker("container", "inspect", "--format", "{{.State.Status}}", host.container)
        if state != "running" or time.monotonic() > deadline:
            logs = subprocess.run(["docker", "logs", "--tail", "5", host.container], capture_output=True, text=True)
            tail = " | ".join((logs.stdout + logs.stderr).strip().splitlines()[-5:])
            raise LabError(f"{host.name} not reachable over ssh ({state}): {tail or probe.stderr.strip()}")
        time.sleep(0.2)


def _make_key(keydir: Path) -> Path:
    identity = keydir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", keydir.name, "-f", str(identity)],
                   check=True, capture_output=True)
    return identity


def _close_masters(ssh_config: Path) -> None:
    """End the background master connections that ControlPersist left (they are ours)."""
    for line in ssh_config.read_text().splitlines():
        if line.startswith("Host "):
            subprocess.run(["ssh", "-F", str(ssh_config), "-O", "exit", line.split()[1]],
                           capture_output=True, timeout=10)


def _remove_labelled(label: str) -> list[str]:
    removed = []
    containers = _docker("container", "ls", "--all", "--quiet", "--filter", f"label={label}").split()
    if containers:
        _docker("container", "rm", "--force", "--volumes", *containers)
        removed += [f"container {name}" for name in containers]
    for kind in ("volume", "network"):
        names = _docker(kind, "ls", "--quiet", "--filter", f"label={label}").split()
        if names:
            _docker(kind, "rm", *names)
            removed += [f"{kind} {name}" for name in names]
    return removed


@contextlib.contextmanager
def _no_interrupts():
    """Let a cleanup finish although the user presses Ctrl-C again (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _alive(pid: int) -> bool:
    """A zombie counts as dead: a SIGKILLed owner stays one until its parent reaps it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _docker(*args: str) -> str:
    """Run the Docker CLI; its stdout stripped. A failure raises LabError with Docker's own message."""
    if shutil.which("docker") is None:
        raise LabError("the docker CLI is missing (run: apt-get install docker.io)")
    result = subprocess.run(["docker", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise LabError(f"docker {args[0]} {args[1] if len(args) > 1 else ''}: {result.stderr.strip()}")
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """build | up N [--docker] | list | clean [--all]: the test hosts by hand."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.testhosts", description=main.__doc__)
    parser.add_argument("--qemu", action="store_true", help="image with qemu-system-x86 as well")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the image unless cached").add_argument("--rebuild", action="store_true")
    up = commands.add_parser("up", help="start hosts, print their ssh config, wait for Ctrl-C")
    up.add_argument("count", type=int, nargs="?", default=2)
    up.add_argument("--docker", action="store_true", help="each host runs its own dockerd")
    up.add_argument("--inventory", type=Path, help="also write an Ansible inventory there: group labs, lab1 runs "
                                                   "as root through become, lab2's sshd listens on port 2222")
    commands.add_parser("list", help="what carries the test-host label")
    commands.add_parser("clean", help="remove sessions whose owner died").add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    packages = PACKAGES + WITH_QEMU if args.qemu else PACKAGES
    # SIGTERM takes the same way out as Ctrl-C, so `kill PID` also removes the hosts; SIGINT is set
    # explicitly because a shell starts background jobs with it ignored, and Python keeps that.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if args.command == "build":
            if args.rebuild:
                remove_images()
            image = build_image(packages, progress=print)
            print(f"{image.tag}: {image.size_bytes / 1e6:.0f} MB, " +
                  (f"built in {image.build_s:.1f} s" if image.built else "cached"))
        elif args.command == "up":
            ports = {"lab2": 2222} if args.inventory else {}
            with start_hosts(args.count, docker=args.docker, packages=packages, progress=print, ports=ports) as hosts:
                for host in hosts:
                    print(f"{host.name} {host.address}:{host.port} docker={host.docker}")
                if args.inventory:
                    print(f"inventory: {write_inventory(hosts, args.inventory, become={'lab1'})}")
                print(f"ready: ssh -F {hosts[0].ssh_config} {hosts[0].name}   (Ctrl-C removes everything)", flush=True)
                signal.pause()
        elif args.command == "list":
            print("\n".join(leftovers()) or "nothing")
        else:
            print("\n".join(clean_leftovers(include_live=args.all)) or "nothing to remove")
    except LabError as error:
        print(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        print("interrupted; removed the hosts")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
