"""A Docker daemon of the run's own, for a published port without the userland proxy.

`--userland-proxy=false` makes dockerd publish a port with kernel DNAT alone (hairpin NAT for
127.0.0.1, through `route_localnet` on its bridge). The user's daemon is never changed: this one
is started for the run and removed when the run ends. It lives apart in every way:
- its own network namespace (and mount namespace), made by `unshare`: a dockerd with iptables on
  removes and rewrites the DOCKER chains of the namespace it starts in, so in the host's it would
  wipe the user's daemon's rules. Its bridge, NAT rules, conntrack table and ip_forward setting
  live and die with that namespace; no mount of it ever shows in the host's mount table;
- its own socket, data root, exec root, pid file and an empty config file (the user's
  /etc/docker/daemon.json is never read), all in one folder under /var/tmp named after the runner;
- its own bridge, `lb-noproxy0`, on a subnet no route of the host uses, and its containers' cgroups
  under a parent of their own, not Docker's /docker;
- the app's image, copied from the user's daemon (`docker save | docker load`: the same bits).
The load generator reaches it by entering that namespace (`entered()`) and connecting to
127.0.0.1 there: loopback still, in a namespace where nothing else lives.

If the runner is killed, the kernel sends dockerd SIGTERM (it stops its containers); `bench clean`
removes whatever is left of an engine whose runner is gone: its processes, its cgroups, its folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import psutil

from bench.errors import SetupError
from bench.roles import RoleProcess
from bench.setups.container.daemons import CONTAINERD, DOCKERD
from bench.setups.procutil import die_with_parent

ENGINES_DIR = Path("/var/tmp")
PREFIX = "layerbench-engine-"  # + <runner pid>-<token>: one folder per private engine
OWNER_FILE = "owner.json"  # who started it: runner pid and start time, run id
BRIDGE = "lb-noproxy0"
# Candidate subnets for its bridge, the first that no route of the host touches is used (inside its
# own namespace a clash could not even happen; the check keeps the figures unambiguous to a reader).
SUBNETS = ("10.226.26.0/24", "10.227.27.0/24", "172.30.226.0/24", "192.168.226.0/24")
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
CLONE_NEWNET = 0x40000000

# Runs inside the new namespaces: bring lo up, make the bridge dockerd is told to use (it creates
# only docker0 by itself), then become dockerd. Values come as arguments, never spliced in.
_SCRIPT = """set -e
ip link set lo up
ip link add "$1" type bridge
ip addr add "$2" dev "$1"
ip link set "$1" up
shift 2
exec "$@"
"""


def unavailable_reason() -> str | None:
    """Why no private engine can start here (not root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "a published port without the proxy needs a private dockerd, which needs root"
    missing = [tool for tool in ("dockerd", "unshare", "ip", "iptables") if _which(tool) is None]
    if missing:
        return f"a private dockerd needs {', '.join(missing)} (apt-get install docker.io iproute2 iptables util-linux)"
    return None


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next((f"{folder}/{tool}" for folder in ("/usr/sbin", "/sbin", "/usr/bin")
                                       if os.access(f"{folder}/{tool}", os.X_OK)), None)


def free_subnet(routes: list[dict]) -> ipaddress.IPv4Network:
    """The first candidate subnet that overlaps no route of the host (`ip -j route` entries)."""
    used = []
    for route in routes:
        destination = route.get("dst")
        if destination and destination != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(destination, strict=False))
    for candidate in map(ipaddress.IPv4Network, SUBNETS):
        if not any(candidate.overlaps(network) for network in used if network.version == 4):
            return candidate
    raise SetupError(f"every subnet a private dockerd may use ({', '.join(SUBNETS)}) is routed on this host")


def _host_routes() -> list[dict]:
    try:
        done = subprocess.run([_which("ip") or "ip", "-j", "route", "show", "table", "all"], capture_output=True,
                              text=True, timeout=10, check=False)
        return json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


class PrivateEngine:
    """One private dockerd: `start()`, `load_image()`, `entered()` around what talks to its ports,
    `stop()` (idempotent). `client` is a Docker SDK client on its socket once started."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.folder = ENGINES_DIR / f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self.cgroup_parent = f"/{self.folder.name}"
        self.subnet: ipaddress.IPv4Network | None = None
        self.client = None
        self._popen: subprocess.Popen | None = None

    # ---- where things are ------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def pid(self) -> int | None:
        """dockerd's pid (unshare and the shell exec into it), None before start or once stopped."""
        return self._popen.pid if self._popen is not None and self._popen.poll() is None else None

    @property
    def bridge(self) -> str:
        return BRIDGE

    @property
    def gateway(self) -> str:
        return str(next(self.subnet.hosts())) if self.subnet else ""

    def facts(self) -> dict:
        """What a trial records about it."""
        return {"engine": "private dockerd (--userland-proxy=false), in its own network namespace",
                "engine_folder": str(self.folder), "bridge": BRIDGE, "bridge_subnet": str(self.subnet),
                "engine_pid": self.pid}

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start dockerd in its own namespaces and wait until it answers; SetupError with its log's
        last lines when it does not."""
        reason = unavailable_reason()
        if reason is not None:
            raise SetupError(reason)
        self.subnet = free_subnet(_host_routes())
        self.folder.mkdir(mode=0o700, parents=True)
        (self.folder / OWNER_FILE).write_text(json.dumps({"runner_pid": os.getpid(), "run_id": self.run_id,
                                                          "runner_started": psutil.Process().create_time()}))
        (self.folder / "daemon.json").write_text("{}\n")  # never the user's /etc/docker/daemon.json
        dockerd = [_which("dockerd"), "--config-file", str(self.folder / "daemon.json"),
                   "--host", f"unix://{self.socket}", "--data-root", str(self.folder / "data"),
                   "--exec-root", str(self.folder / "exec"), "--pidfile", str(self.folder / "docker.pid"),
                   "--bridge", BRIDGE, "--userland-proxy=false", "--cgroup-parent", self.cgroup_parent,
                   "--log-level", "warn"]
        command = [_which("unshare"), "--net", "--mount", "--propagation", "private", "--", "sh", "-c", _SCRIPT,
                   "layerbench-engine", BRIDGE, f"{self.gateway}/{self.subnet.prefixlen}", *dockerd]
        log = open(self.folder / "dockerd.log", "wb")
        try:
            # SIGTERM, not SIGKILL, when the runner dies: dockerd then stops its containers itself.
            self._popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True,
                                           preexec_fn=lambda: die_with_parent(signal.SIGTERM))
        except OSError as error:
            raise SetupError(f"cannot start a private dockerd: {error}") from None
        finally:
            log.close()
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        import docker

        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise SetupError(f"the private dockerd exited ({self._popen.returncode}): {self.log_tail()}")
            if _socket_answers(self.socket):
                client = docker.DockerClient(base_url=f"unix://{self.socket}", version="auto", timeout=60)
                try:
                    client.ping()
                    self.client = client
                    return
                except Exception:
                    client.close()
            time.sleep(0.2)
        raise SetupError(f"the private dockerd did not answer within {START_DEADLINE_S:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.folder / "dockerd.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def load_image(self, main_client, tag: str) -> None:
        """Copy image `tag` from the user's daemon into this one (docker save | docker load), unless
        it is there already."""
        import docker

        try:
            self.client.images.get(tag)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            self.client.images.load(main_client.images.get(tag).save(named=True))
        except Exception as error:
            raise SetupError(f"cannot copy image {tag} into the private dockerd: {error}") from None

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread in the engine's network namespace for the block (processes it starts follow),
        then back in the one it was in. Other threads are not moved."""
        if self.pid is None:
            raise SetupError("the private dockerd is not running")
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(target, CLONE_NEWNET) != 0:
                    raise SetupError(f"cannot enter the private dockerd's network namespace: "
                                     f"{os.strerror(ctypes.get_errno())}")
            finally:
                os.close(target)
            try:
                yield
            finally:
                if libc.setns(home, CLONE_NEWNET) != 0:  # never expected; the runner must not go on elsewhere
                    raise RuntimeError(f"cannot return to this thread's network namespace: "
                                       f"{os.strerror(ctypes.get_errno())}")
        finally:
            os.close(home)

    def processes(self) -> list[RoleProcess]:
        """Its dockerd and containerd: the engine's fixed cost, as the user's daemon's is."""
        if self.pid is None:
            return []
        try:
            dockerd = psutil.Process(self.pid)
            found = [RoleProcess(DOCKERD.key, dockerd)]
            found += [RoleProcess(CONTAINERD.key, child) for child in dockerd.children()
                      if child.name() == "containerd"]
        except psutil.Error:
            return []
        return found

    def stop(self) -> list[str]:
        """Stop dockerd (it stops its containers), kill whatever of it is left, remove its cgroups and
        its folder. Safe to call twice; what was removed, one line each."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        removed = []
        if self._popen is not None:
            if self._popen.poll() is None:
                self._popen.terminate()
                try:
                    self._popen.wait(timeout=STOP_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait(timeout=10)
            self._popen = None
            removed.append(f"private dockerd of run {self.run_id}")
        _remove_engine(self.folder)
        return removed


def _socket_answers(path: Path) -> bool:
    """True when something accepts on the unix socket (the SDK leaks a socket when it cannot connect)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(str(path))
        return True
    except OSError:
        return False


# ---- what a killed runner leaves: found and removed by bench clean ------------------------------


def _owner(folder: Path) -> dict:
    try:
        data = json.loads((folder / OWNER_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _runner_alive(owner: dict) -> bool:
    """True while the runner that started the engine lives (not another process that got its pid)."""
    try:
        started = psutil.Process(int(owner.get("runner_pid") or 0)).create_time()
        return abs(started - float(owner.get("runner_started") or 0)) < 1.0
    except (psutil.Error, ValueError, TypeError):
        return False


def engine_folders() -> list[Path]:
    try:
        return sorted(path for path in ENGINES_DIR.glob(f"{PREFIX}*") if path.is_dir())
    except OSError:
        return []


def _processes_of(folder: Path) -> list[psutil.Process]:
    """Processes whose command line names the engine's folder (dockerd, containerd, shims), with
    everything under them (the containers' processes), deepest first."""
    marker = str(folder)
    roots = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or ()):
            roots.append(process)
    found: dict[int, psutil.Process] = {}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            for child in reversed(root.children(recursive=True)):
                found.setdefault(child.pid, child)
        found.setdefault(root.pid, root)
    return list(found.values())


def _remove_engine(folder: Path) -> None:
    """Kill what is left of an engine, then remove its cgroups and its folder."""
    victims = _processes_of(folder)
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(victims, timeout=10)
    for controller in (CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ()):
        parent = controller / folder.name
        if parent.is_dir():  # the containers' cgroups first: rmdir takes only empty ones
            for child in sorted(parent.rglob("*"), key=lambda path: len(path.parts), reverse=True):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()
    shutil.rmtree(folder, ignore_errors=True)


def find_leftovers() -> list[str]:
    """Private engines whose runner is gone (their folder, and their processes if still running)."""
    found = []
    for folder in engine_folders():
        if not _runner_alive(_owner(folder)):
            running = len(_processes_of(folder))
            found.append(f"private dockerd folder {folder}" + (f" ({running} processes)" if running else ""))
    return found


def clean_leftovers(run_id: str | None = None) -> list[str]:
    """Remove private engines whose runner is gone (only run_id's, when given); one line each."""
    removed = []
    for folder in engine_folders():
        owner = _owner(folder)
        if _runner_alive(owner) or (run_id is not None and owner.get("run_id") != run_id):
            continue
        _remove_engine(folder)
        removed.append(f"private dockerd {folder}")
    return removed
