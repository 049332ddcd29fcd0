"""The container setup: the app in a Docker container made from the host's own interpreter.

Runs the FROM-scratch image from `bench.images.docker_image` through the Docker SDK, locked
down (uid 65534, read-only root, no capabilities), pinned like the bare app. Attribution: the
app is every pid in the container's cgroup, the runtime is its containerd shim, and with a
published port (bridge) the proxy is the docker-proxy that forwards it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil
from pydantic import Field, field_validator

from bench.netutil import free_port
from bench.setups import register
from bench.setups.base import (APP_PORT_IN_GUEST, ROLE_APP, ROLE_PROXY, ROLE_RUNTIME, Instance, Options, RoleProcess,
                               Setup, SetupError, pin_process)

LABEL = "layerbench"
RUN_LABEL = "layerbench.run"
PID_LABEL = "layerbench.runner-pid"  # lets find_leftovers tell a live run's containers from a dead one's
STOP_TIMEOUT_S = 5
_MEMORY = re.compile(r"^[1-9][0-9]*[bkmg]?$", re.IGNORECASE)  # what docker's --memory accepts


class ContainerOptions(Options):
    network: Literal["bridge", "host"] = "bridge"  # bridge: published port via docker-proxy/NAT
    cpus: float | None = Field(default=None, gt=0)  # CFS quota, in CPUs (0.5 = half a CPU)
    memory: str | None = None  # memory limit like "256m" or "1g"
    base_image: str | None = None  # e.g. "python:3.11-slim" (needs a registry); default: scratch image
    # Pin the shim and docker-proxy to the app's CPUs (default), so the whole container draws on the
    # CPU budget the bare app had; false lets them run anywhere, e.g. beside the load generator.
    pin_helpers: bool = True
    # Where the app's temp files (/io) go: "tmpfs" keeps the root read-only with a tmpfs at /tmp;
    # "overlay" writes them through the container's overlayfs writable layer, which needs a
    # writable root (read_only=False, no /tmp tmpfs; still uid 65534, no capabilities).
    scratch: Literal["tmpfs", "overlay"] = "tmpfs"

    @field_validator("memory")
    @classmethod
    def _memory_like_docker(cls, value: str | None) -> str | None:
        if value is not None and not _MEMORY.match(value):
            raise ValueError(f"memory must look like 256m, 1g or 1048576 (bytes), got {value!r}")
        return value.lower() if value else value


@dataclass
class _Running:
    """What _terminate and the attribution need about one started container."""

    container: object  # docker.models.containers.Container
    init_pid: int
    cgroup_dirs: dict[str, Path]  # controller ("cpu", "memory", "pids", or "" for v2) -> directory
    proxy_port: int | None  # the host port docker-proxy listens on (bridge only)
    known: dict[int, psutil.Process] = field(default_factory=dict)  # stable objects for cpu deltas
    proxy_pids: list[int] = field(default_factory=list)
    proxy_scanned_at: float = 0.0
    cpus: tuple[int, ...] = ()  # the app CPU set: shim and proxy are pinned there too
    pinned: set[int] = field(default_factory=set)

    def poll(self) -> int | None:
        """Exit code once the container has stopped, like Popen.poll (used by the readiness wait)."""
        try:
            self.container.reload()
        except Exception:  # gone or daemon down: it is not running either way
            return -1
        state = self.container.attrs.get("State", {})
        return None if state.get("Running") else int(state.get("ExitCode", -1))


def _docker():
    import docker  # imported here so the rest of layerbench works without the package

    return docker


def _daemon_answers(docker) -> bool:
    # The SDK leaks a socket when connecting to a unix socket fails (docker 7.x unixconn), which
    # warnings-as-errors turns into a failure: probe the socket ourselves first.
    address = _daemon_address()
    if address.startswith("unix://"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(2)
                probe.connect(address[len("unix://"):])
        except OSError:
            return False
    # from_env() negotiates the API version while constructing; a client pinned to the oldest
    # version connects only in ping() and is always closed.
    client = docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=5,
                              **docker.utils.kwargs_from_env())
    try:
        return client.ping()
    except Exception:
        return False
    finally:
        client.close()


def _daemon_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@register
class ContainerSetup(Setup):
    name = "container"
    layer = ("the app in a container: namespaces + cgroups + an overlayfs root over the host kernel, "
             "plus NAT and a userland proxy for a published port")
    narration = ("the same app inside a container: the kernel is shared, only namespaces and cgroups "
                 "separate it. A published port adds NAT and a userland proxy that copies every byte once more.")
    Options = ContainerOptions
    ready_deadline_s = 30.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._client = None
        self._image = None  # bench.images.docker_image.DockerImage once prepared

    # ---- availability and preparation --------------------------------------------------

    @classmethod
    def check(cls) -> str | None:
        try:
            docker = _docker()
        except ImportError:
            return "the docker Python package is missing: pip install 'docker>=7.1'"
        if _daemon_answers(docker):
            return None
        if not any(os.access(os.path.join(d, "dockerd"), os.X_OK) for d in os.get_exec_path()):
            return "Docker is not installed: apt-get install docker.io (or run sudo scripts/host-setup.sh)"
        return f"no Docker daemon answers at {_daemon_address()}; start one: sudo scripts/host-setup.sh"

    @classmethod
    def doctor_lines(cls) -> list[str]:
        if cls.check() is not None:
            return []
        client = _docker().from_env(timeout=10)
        try:
            version = client.version()
            return [f"Docker engine {version.get('Version')}, cgroup v{client.info().get('CgroupVersion', '?')}"]
        except Exception:
            return []
        finally:
            client.close()

    def variant(self) -> str:
        parts = [self.options.network]
        if self.options.cpus is not None:
            parts.append(f"cpus={self.options.cpus:g}")
        if self.options.memory is not None:
            parts.append(f"mem={self.options.memory}")
        if self.options.base_image is not None:
            parts.append(f"base={self.options.base_image}")
        if not self.options.pin_helpers:
            parts.append("helpers-unpinned")
        if self.options.scratch != "tmpfs":
            parts.append(f"scratch={self.options.scratch}")
        return ",".join(parts)

    def client(self):
        """The Docker SDK client (created once); SetupError when no daemon answers."""
        if self._client is None:
            try:
                self._client = _docker().from_env(timeout=30)
            except Exception as error:
                raise SetupError(f"no Docker daemon answers at {_daemon_address()}: {error}") from None
        return self._client

    def prepare(self) -> None:
        from bench.images.docker_image import ensure_image

        try:
            self._image = ensure_image(self.client(), base_image=self.options.base_image, progress=self.progress)
        except SetupError:
            raise
        except Exception as error:
            hint = "; without a registry drop base_image to use the scratch image" if self.options.base_image else ""
            raise SetupError(f"cannot build the container image: {_explain(error)}{hint}") from None

    # ---- lifecycle ---------------------------------------------------------------------

    def _launch(self) -> Instance:
        docker = _docker()
        began = time.perf_counter()
        self._ensure_image_present()
        image_s = time.perf_counter() - began

        port = free_port()
        host_networking = self.options.network == "host"
        name = f"layerbench-{self.run_id}-{secrets.token_hex(4)}"
        kwargs = dict(
            image=self._image.tag, name=self._safe_name(name), detach=True,
            labels={LABEL: "1", RUN_LABEL: self.run_id, PID_LABEL: str(os.getpid())},
            user="65534:65534", read_only=True, tmpfs={"/tmp": "size=64m"},
            cap_drop=["ALL"], security_opt=["no-new-privileges"],
            cpuset_cpus=",".join(str(cpu) for cpu in self.pinning.app_cpus),
        )
        if self.options.scratch == "overlay":  # /tmp (mode 1777 in the image) on the writable layer
            kwargs.update(read_only=False)
            del kwargs["tmpfs"]
        if host_networking:
            kwargs.update(network_mode="host", command=self._image.app_argv("127.0.0.1", port))
        else:
            kwargs.update(ports={f"{APP_PORT_IN_GUEST}/tcp": ("127.0.0.1", port)},  # loopback only
                          command=self._image.app_argv("0.0.0.0", APP_PORT_IN_GUEST))
        if self.options.cpus is not None:
            kwargs["nano_cpus"] = int(self.options.cpus * 1e9)
        if self.options.memory is not None:
            kwargs["mem_limit"] = self.options.memory

        began = time.perf_counter()
        try:
            container = self.client().containers.create(**kwargs)
        except docker.errors.APIError as error:
            raise SetupError(f"the engine refused the container: {_explain(error)}") from None
        except Exception as error:
            raise SetupError(f"Docker daemon stopped answering: {_explain(error)}") from None
        create_s = time.perf_counter() - began

        began = time.perf_counter()
        try:
            container.start()
            container.reload()
        except Exception as error:
            _remove_quietly(container)
            explanation = _explain(error)
            if "address already in use" in explanation or "port is already allocated" in explanation:
                raise SetupError(f"port 127.0.0.1:{port} is taken; try again ({explanation})") from None
            if isinstance(error, docker.errors.APIError):
                raise SetupError(f"the engine could not start the container: {explanation}") from None
            raise SetupError(f"Docker daemon stopped answering: {explanation}") from None
        start_s = time.perf_counter() - began

        init_pid = int(container.attrs["State"].get("Pid") or 0)
        running = _Running(container=container, init_pid=init_pid, cgroup_dirs=_cgroup_dirs(init_pid),
                           proxy_port=None if host_networking else port,
                           cpus=tuple(self.pinning.app_cpus) if self.options.pin_helpers else ())
        facts = {
            "container_id": container.id, "container_name": container.name,
            "image_tag": self._image.tag, "image_id": self._image.image_id,
            "image_size_bytes": self._image.size_bytes, "network": self.options.network,
            "cpus": self.options.cpus, "memory": self.options.memory, "base_image": self.options.base_image,
            "scratch": self.options.scratch,
            "cpuset": kwargs["cpuset_cpus"], "init_pid": init_pid,
            "cgroup_version": 2 if "" in running.cgroup_dirs else 1,
        }
        return Instance(port=port, processes=lambda: _processes(running),
                        phases={"image_s": image_s, "create_s": create_s, "start_s": start_s},
                        facts=facts, engine_accounting=lambda: _engine_accounting(running), handle=running)

    def _terminate(self, instance: Instance) -> None:
        running: _Running = instance.handle
        docker = _docker()
        try:
            try:
                running.container.stop(timeout=STOP_TIMEOUT_S)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError:
                pass  # already stopping or stopped; remove(force) below settles it
            _remove_quietly(running.container, raise_connection_errors=True)
        except docker.errors.DockerException as error:
            raise SetupError(f"could not remove container {running.container.name}: {_explain(error)}; "
                             f"run `bench clean`") from None
        except Exception as error:  # requests' ConnectionError: the daemon is gone
            raise SetupError(f"Docker daemon stopped answering while removing {running.container.name}: "
                             f"{_explain(error)}; run `bench clean` once it is back") from None

    def diagnose(self, instance: Instance) -> str:
        running: _Running = instance.handle
        try:
            running.container.reload()
            state = running.container.attrs.get("State", {})
            logs = running.container.logs(tail=20).decode(errors="replace").strip().splitlines()
        except Exception as error:
            return f"container unavailable: {_explain(error)}"
        status = f"container {state.get('Status')} (exit {state.get('ExitCode')}" + (
            ", OOM-killed)" if state.get("OOMKilled") else ")")
        return " | ".join([status, *logs])

    # ---- helpers ----------------------------------------------------------------------

    def _ensure_image_present(self) -> None:
        # Cheap when prepared: one inspect. Rebuilds if someone removed the image meanwhile.
        if self._image is not None:
            try:
                self.client().images.get(self._image.tag)
                return
            except _docker().errors.ImageNotFound:
                self._image = None
            except Exception as error:
                raise SetupError(f"Docker daemon stopped answering: {_explain(error)}") from None
        self.prepare()

    @staticmethod
    def _safe_name(name: str) -> str:
        # Container names allow [a-zA-Z0-9][a-zA-Z0-9_.-]; run ids may hold ':' or spaces.
        return re.sub(r"[^a-zA-Z0-9_.-]", "-", name)


@contextlib.contextmanager
def _client_if_daemon(timeout_s: int):
    """A Docker client when the SDK is installed and a daemon answers, else None; always closed."""
    try:
        docker = _docker()
    except ImportError:
        yield None
        return
    if not _daemon_answers(docker):
        yield None
        return
    client = docker.from_env(timeout=timeout_s)
    try:
        yield client
    finally:
        client.close()


def _runner_gone(container) -> bool:
    return not psutil.pid_exists(int(container.labels.get(PID_LABEL, "0") or 0))


def prune_images() -> list[str]:
    """Remove layerbench/app images built from older inputs (about 30 MB each); the tags removed."""
    from bench.images.docker_image import REPOSITORY, remove_images
    from bench.images.rootfs import rootfs_digest

    with _client_if_daemon(30) as client:
        if client is None:
            return []
        return [f"image {tag}" for tag in remove_images(client, keep=(f"{REPOSITORY}:{rootfs_digest()}",))]


def find_leftovers() -> list[str]:
    """Containers labelled layerbench whose runner process is gone."""
    with _client_if_daemon(10) as client:
        if client is None:
            return []
        try:
            containers = client.containers.list(all=True, filters={"label": LABEL})
        except Exception:  # the daemon went away meanwhile
            return []
        return [f"container {container.name}" for container in containers if _runner_gone(container)]


def clean_leftovers(run_id: str | None = None) -> list[str]:
    """Remove containers labelled layerbench whose runner is gone (or all of one run's); the names removed."""
    label = f"{RUN_LABEL}={run_id}" if run_id is not None else LABEL
    with _client_if_daemon(10) as client:
        if client is None:  # no daemon: nothing of ours can be running there
            return []
        try:
            containers = client.containers.list(all=True, filters={"label": label})
            if run_id is None:  # everything of runs that are over; a run still going keeps its containers
                containers = [c for c in containers if _runner_gone(c)]
            return [container.name for container in containers if _remove_quietly(container)]
        except Exception:  # the daemon went away meanwhile
            return []


# ---- attribution -----------------------------------------------------------------------------

def _processes(running: _Running) -> list[RoleProcess]:
    found = [RoleProcess(ROLE_APP, process) for process in _stable(running, _app_pids(running))]
    found += [RoleProcess(ROLE_RUNTIME, process) for process in _stable(running, _shim_pids(running))]
    if running.proxy_port is not None:
        found += [RoleProcess(ROLE_PROXY, process) for process in _stable(running, _proxy_pids(running))]
    # The shim and the proxy work for this container alone: they share its CPU set, as QEMU
    # shares the VM's, so the whole setup draws on the same CPUs as the bare app and never
    # steals from the load generator.
    for role_process in found:
        pid = role_process.process.pid
        if running.cpus and role_process.role != ROLE_APP and pid not in running.pinned \
                and pin_process(pid, running.cpus):
            running.pinned.add(pid)
    return found


def _stable(running: _Running, pids: list[int]) -> list[psutil.Process]:
    """The cached psutil.Process per pid (cpu_percent needs the same object between calls)."""
    processes = []
    for pid in pids:
        process = running.known.get(pid)
        if process is None or not process.is_running():  # is_running also catches pid reuse
            try:
                process = running.known[pid] = psutil.Process(pid)
            except psutil.Error:
                running.known.pop(pid, None)
                continue
        processes.append(process)
    return processes


def _app_pids(running: _Running) -> list[int]:
    for directory in running.cgroup_dirs.values():
        try:
            return [int(line) for line in (directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            continue
    try:  # no cgroup file readable: ask the engine (runs ps in the container; slower)
        top = running.container.top()
        column = top["Titles"].index("PID")
        return [int(row[column]) for row in top["Processes"]]
    except Exception:
        return []


def _shim_pids(running: _Running) -> list[int]:
    try:  # the shim is the parent of the container's init (runc's shim v2 reaps it)
        parent = psutil.Process(running.init_pid).parent()
        if parent is not None and parent.name().startswith("containerd-shim"):
            return [parent.pid]
    except psutil.Error:
        pass
    for process in psutil.process_iter(["name", "cmdline"]):
        if (process.info["name"] or "").startswith("containerd-shim") and \
                running.container.id in " ".join(process.info["cmdline"] or ()):
            return [process.pid]
    return []


def _proxy_pids(running: _Running) -> list[int]:
    # A full process scan costs ~10 ms: do it until found, then only re-check the known pids.
    alive = [pid for pid in running.proxy_pids if psutil.pid_exists(pid)]
    if alive or time.monotonic() - running.proxy_scanned_at < 1.0:
        return alive
    running.proxy_scanned_at = time.monotonic()
    wanted = ["-host-port", str(running.proxy_port)]
    running.proxy_pids = [
        process.pid for process in psutil.process_iter(["name", "cmdline"])
        if (process.info["name"] or "") == "docker-proxy" and _has_pair(process.info["cmdline"] or [], wanted)]
    return running.proxy_pids


def _has_pair(cmdline: list[str], pair: list[str]) -> bool:
    return any(cmdline[i:i + 2] == pair for i in range(len(cmdline) - 1))


# ---- the engine's own accounting (cgroup files: cheap enough to read every second) ------------

def _cgroup_dirs(pid: int) -> dict[str, Path]:
    """{controller: directory} of a process's cgroups; {"": dir} on cgroup v2.

    Read from /proc/<pid>/cgroup so it works with the cgroupfs and systemd drivers alike.
    """
    dirs: dict[str, Path] = {}
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return dirs
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            directory = Path("/sys/fs/cgroup") / path.lstrip("/")
            if (directory / "cgroup.procs").exists():  # pure v2 (a v1 host's hybrid mount is elsewhere)
                dirs[""] = directory
            continue
        for controller in controllers.split(","):
            if controller in ("cpu", "cpuacct", "memory", "pids"):
                # Debian mounts "cpu,cpuacct" with "cpu" and "cpuacct" symlinks: try both spellings.
                for mount in (controller, controllers):
                    directory = Path("/sys/fs/cgroup") / mount / path.lstrip("/")
                    if directory.is_dir():
                        dirs[controller] = directory
                        break
    return dirs


def _engine_accounting(running: _Running) -> dict:
    """CPU (ns) and memory (bytes) the kernel charges to the container's cgroup."""
    dirs = running.cgroup_dirs
    out: dict = {}
    try:
        if "" in dirs:  # cgroup v2
            stat = _keyed((dirs[""] / "cpu.stat").read_text())
            out.update(source="cgroup v2", cpu_ns=stat["usage_usec"] * 1000, cpu_user_ns=stat["user_usec"] * 1000,
                       cpu_sys_ns=stat["system_usec"] * 1000,
                       memory_bytes=int((dirs[""] / "memory.current").read_text()))
        else:
            tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")  # cpuacct.stat counts USER_HZ ticks
            stat = _keyed((dirs["cpuacct"] / "cpuacct.stat").read_text())
            out.update(source="cgroup v1", cpu_ns=int((dirs["cpuacct"] / "cpuacct.usage").read_text()),
                       cpu_user_ns=int(stat["user"] * tick_ns), cpu_sys_ns=int(stat["system"] * tick_ns),
                       memory_bytes=int((dirs["memory"] / "memory.usage_in_bytes").read_text()))
    except (OSError, KeyError, ValueError):
        pass  # the container has gone; the sampler records what it could
    return out


def docker_stats(instance: Instance) -> dict:
    """One `docker stats` sample of the container (takes ~1-2 s: the engine waits for two reads)."""
    running: _Running = instance.handle
    try:
        return running.container.stats(stream=False)
    except Exception as error:
        return {"error": _explain(error)}


def _keyed(text: str) -> dict[str, int]:
    return {key: int(value) for key, value in (line.split() for line in text.splitlines() if line.strip())}


def _explain(error: Exception) -> str:
    explanation = getattr(error, "explanation", None) or str(error) or type(error).__name__
    return " ".join(str(explanation).split())


def _remove_quietly(container, raise_connection_errors: bool = False) -> bool:
    """Force-remove; True when removed by this call. Gone already is fine (idempotent)."""
    docker = _docker()
    try:
        container.remove(force=True)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as error:
        if error.status_code == 409:  # "removal already in progress"
            return False
        if raise_connection_errors:
            raise
        return False
    except Exception:
        if raise_connection_errors:
            raise
        return False
