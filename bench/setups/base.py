"""The setup interface: how the runner starts the app in one layer and gets it back.

A setup module supplies a subclass of `Setup` that fills in four small hooks
(`check`, `prepare`, `_launch`, `_terminate`). The public lifecycle, `Setup.running()`,
lives here once: launch, readiness (first HTTP 200 on /health, with a deadline), the
start-up phase split, and a stop that always happens, on an exception or Ctrl-C too.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import http.client
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import psutil
from pydantic import BaseModel, ConfigDict

# Roles a host process can play in a setup; the charts stack CPU and memory by these.
ROLE_APP = "app"  # the benchmarked app itself (in a VM: nothing on the host, see hypervisor)
ROLE_RUNTIME = "runtime"  # container runtime pieces that live per container (containerd shim)
ROLE_PROXY = "proxy"  # userland proxy forwarding a published port (docker-proxy)
ROLE_HYPERVISOR = "hypervisor"  # the QEMU process: guest kernel + app + device emulation
ROLES = (ROLE_APP, ROLE_RUNTIME, ROLE_PROXY, ROLE_HYPERVISOR)

APP_PORT_IN_GUEST = 8080  # the port the app listens on inside a container or VM


class SetupError(Exception):
    """A setup could not start or stop; the message is one line a user can act on."""


class Options(BaseModel):
    """Variant options a scenario may set for a setup. Subclasses add fields; unknown keys fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the app side (app, shim, proxy, QEMU) and the load generator may use."""

    app_cpus: tuple[int, ...]
    load_cpus: tuple[int, ...]

    @classmethod
    def default(cls) -> "Pinning":
        """App on the last CPU, load generator on the others (all CPUs if there is only one)."""
        cpus = sorted(psutil.Process().cpu_affinity() or range(psutil.cpu_count() or 1))
        if len(cpus) == 1:
            return cls(app_cpus=tuple(cpus), load_cpus=tuple(cpus))
        return cls(app_cpus=(cpus[-1],), load_cpus=tuple(cpus[:-1]))

    def as_dict(self) -> dict:
        return {"app_cpus": list(self.app_cpus), "load_cpus": list(self.load_cpus)}


@dataclass(frozen=True)
class RoleProcess:
    """One host process that a running setup costs, with the role it plays."""

    role: str
    process: psutil.Process


@dataclass
class Instance:
    """A started setup: where the app answers and which host processes it costs."""

    port: int  # on 127.0.0.1
    # Called by the sampler every few ticks: processes may appear after start (container app).
    processes: Callable[[], list[RoleProcess]]
    # Ordered start-up phases in seconds, filled by _launch; running() appends first_200_s.
    phases: dict[str, float] = field(default_factory=dict)
    # Facts about this instance worth storing (image size, accel, container id, ...).
    facts: dict = field(default_factory=dict)
    # Optional: the engine's own accounting of the app (cgroup / docker stats), read at will.
    engine_accounting: Callable[[], dict] | None = None
    # Setup-private state for _terminate (a Popen, a container object, a QEMU handle).
    handle: object = None

    @property
    def startup_s(self) -> float:
        return sum(self.phases.values())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


ProgressFn = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


class Setup(abc.ABC):
    """One way to run the app: as a bare process, in a container, in a VM, ...

    Subclasses set `name`, `layer` (one sentence for a class), `Options`, and implement the
    hooks. They never print: progress goes through the `progress` callback.
    """

    name: ClassVar[str]
    layer: ClassVar[str]
    Options: ClassVar[type[Options]] = Options
    ready_deadline_s: ClassVar[float] = 30.0

    def __init__(self, options: Options | dict | None, pinning: Pinning, run_id: str, workdir: Path,
                 progress: ProgressFn = _no_progress):
        self.options = options if isinstance(options, Options) else self.Options(**(options or {}))
        self.pinning = pinning
        self.run_id = run_id
        self.workdir = Path(workdir)
        self.progress = progress

    # ---- hooks a setup module supplies -------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def check(cls) -> str | None:
        """None when this setup can run here; else one sentence saying why not and the fix."""

    def prepare(self) -> None:
        """Build or find what the setup needs (image, kernel). Idempotent; may be slow once."""

    def variant(self) -> str:
        """Short name of the variant these options select ("default", "bridge", "tcg", ...)."""
        return "default"

    @abc.abstractmethod
    def _launch(self) -> Instance:
        """Start the app; return as soon as it is launched (readiness is checked by the caller).

        Record phases up to launch in `Instance.phases` (e.g. {"spawn_s": 0.01}).
        """

    @abc.abstractmethod
    def _terminate(self, instance: Instance) -> None:
        """Stop everything _launch started. Must be safe to call twice and after a crash."""

    def diagnose(self, instance: Instance) -> str:
        """Extra words for an error when the app never became ready (e.g. a log tail)."""
        return ""

    def _before_polling(self, instance: Instance, deadline_s: float) -> None:
        """Optional: wait for a cheaper sign of life before /health is polled (a VM's console line)."""

    def _after_ready(self, instance: Instance) -> None:
        """Optional: refine the phases or facts once the first 200 arrived (split first_200_s)."""

    # ---- the lifecycle, in one place ---------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Instance]:
        """Launch, wait for the first 200 on /health, yield, and always stop.

        Adds `first_200_s` (launch returned -> first 200) to the instance's phases.
        """
        instance: Instance | None = None
        try:
            instance = self._launch()
            began = time.perf_counter()
            self._before_polling(instance, self.ready_deadline_s)
            remaining_s = max(2.0, self.ready_deadline_s - (time.perf_counter() - began))
            wait_until_ready(instance, remaining_s, on_fail=lambda: self.diagnose(instance))
            instance.phases["first_200_s"] = time.perf_counter() - began
            self._after_ready(instance)
            with contextlib.suppress(Exception):
                instance.processes()  # discover once now: setups pin helper processes when they find them
            yield instance
        finally:
            if instance is not None:
                self._terminate(instance)


def wait_until_ready(instance: Instance, deadline_s: float, on_fail: Callable[[], str] = lambda: "") -> None:
    """Poll GET /health on the instance until it answers 200; SetupError after deadline_s."""
    give_up = time.monotonic() + deadline_s
    last_error = "no answer"
    delay = 0.005
    while time.monotonic() < give_up:
        # Ask the handle (Popen.poll, a container's state): psutil calls an unreaped zombie "running".
        if instance.handle is not None and _handle_exited(instance.handle):
            detail = on_fail()
            raise SetupError(f"the app exited before answering /health{': ' + detail if detail else ''}")
        # A short timeout: a port forward (QEMU's hostfwd) accepts at once and then hangs until
        # the guest listens; a long timeout would round every start-up up to it.
        connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=0.5)
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return
            last_error = f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as error:
            last_error = type(error).__name__
        finally:
            connection.close()  # also after a timeout: a leaked socket is a ResourceWarning
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)
    detail = on_fail()
    raise SetupError(f"no HTTP 200 on /health within {deadline_s:.0f} s (last: {last_error})"
                     + (f"; {detail}" if detail else ""))


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Popen preexec_fn: the kernel SIGKILLs the child when the runner dies, even by SIGKILL,
    so a killed run cannot leave apps or QEMUs behind (containers belong to dockerd: bench clean)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: `bench clean` still finds orphans by their command line


def pin_process(pid: int, cpus: tuple[int, ...]) -> bool:
    """Pin every thread of a process to `cpus` (sched_setaffinity on one pid moves one thread only).

    Threads created later inherit their creator's mask. False when the process is gone or ours
    to pin is not allowed.
    """
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    pinned = True
    for thread in threads:
        try:
            os.sched_setaffinity(int(thread), cpus)
        except OSError:
            pinned = False
    return pinned


def _handle_exited(handle: object) -> bool:
    poll = getattr(handle, "poll", None)
    return callable(poll) and poll() is not None
