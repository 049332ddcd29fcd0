"""Podman variants of the container setup: `container: {engine: podman}` (as root) and
`container: {engine: podman, rootless: true}` (as the dedicated unprivileged user).

The same image as the Docker variant (streamed in with `docker save | podman load`: the same
layers and image id), the same lock-down, the same pinning; what differs is the engine. Podman
has no daemon: `podman run` does the work itself and exits, leaving conmon to watch the container,
so nothing is paid once per host (rootless keeps one small pause process per user). Rootless, the
container's root is the user mapped through a user namespace; on a cgroup v1 host it gets no
cgroups at all (no limits, no cgroup accounting), and a published port goes through user-space
networking: rootlessport forwarding each connection, slirp4netns as the namespace's network stack.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time

from bench.apps.base import Layer, Place
from bench.app.command import APP_PORT_IN_GUEST
from bench.errors import SetupError
from bench.images.podman_image import ensure_loaded
from bench.netutil import free_port, port_in_use
from bench.roles import APP, RoleProcess
from bench.setups.base import Instance
from bench.setups.procutil import signals_deferred
from bench.setups.container import ContainerOptions, ContainerSetup, engine, engines, runtimes, storage
from bench.setups.container.attribution import cgroup_dirs, engine_accounting
from bench.setups.container.podman import doctor, leftovers, netpath, words
from bench.setups.container.podman.arguments import RunPlan, run_args, ulimit_args
from bench.setups.container.podman.attribution import (CONMON, PAUSE, ROOTLESSPORT, SLIRP4NETNS, RunningPodman,
                                                       own_cgroup_dirs, pause_processes, processes)
from bench.setups.container.podman.cli import Podman, podman_path
from bench.setups.container.podman.user import ROOT, rootless_user, unavailable_reason

STOP_TIMEOUT_S = 5
UNPRIVILEGED_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


@engines.VARIANTS.register
class PodmanContainerSetup(ContainerSetup):
    """The container setup with Podman as its engine (chosen by ContainerSetup.__new__)."""

    engine_name = "podman"
    options: ContainerOptions  # the container's options (the base class types them as any Options)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rootless = self.options.rootless
        self.user = rootless_user() if rootless else ROOT
        self.roles = (APP, CONMON, *self._helper_roles())
        self.fixed_roles = (PAUSE,) if rootless else ()
        self._podman: Podman | None = None
        self._info: dict = {}  # `podman info` of the store this variant uses, once prepared

    @property
    def podman(self) -> Podman:
        """The podman command as this variant's user (set by prepare)."""
        if self._podman is None:
            raise SetupError("the Podman variant was started before it was prepared")
        return self._podman

    def _helper_roles(self) -> tuple:
        options = self.options
        if not options.rootless or options.network == "host":
            return ()
        return (SLIRP4NETNS,) if options.port_handler == "slirp4netns" else (SLIRP4NETNS, ROOTLESSPORT)

    # ---- Podman's part of `bench doctor` and `bench clean` -----------------------------------

    @classmethod
    def engine_doctor_lines(cls) -> list[str]:
        return doctor.doctor_lines()

    @classmethod
    def engine_leftovers(cls) -> list[str]:
        return leftovers.find()

    @classmethod
    def engine_clean(cls, run_id: str | None) -> list[str]:
        return leftovers.clean(run_id)

    # ---- the declaration of this variant ---------------------------------------------------

    def variant(self) -> str:
        return ",".join([super().variant(), *engines.variant_parts(self.options)])

    @property
    def _rootless_v1(self) -> bool:
        """Rootless on a cgroup v1 host (before prepare: judged from the runner's own view)."""
        version = (self._info.get("host") or {}).get("cgroupVersion") or words.host_cgroup_version()
        return self.options.rootless and version == "v1"

    def layer_stack(self) -> tuple[str, ...]:
        return ("hardware", "host kernel", f"container engine ({words.engine_box(self.options, self._rootless_v1)})",
                "app")

    def describe(self) -> dict:
        described = super().describe()
        described.update(stack=words.stack(self.options), narration=words.narration(self.options),
                         colour=words.colour(self.options))
        return described

    def explain(self) -> str:
        options = self.options
        return (words.explanation(options, self._rootless_v1) + words.network(options)
                + (runtimes.explain(self._runtime) if self._runtime else "")
                + storage.explain(options.scratch, (self._info.get("store") or {}).get("graphRoot"),
                                  (self._info.get("store") or {}).get("volumePath")))

    def caveats(self) -> list[str]:
        return words.caveats(self.options, self._rootless_v1)

    def fixed_processes(self) -> list[RoleProcess]:
        return pause_processes(self.user.uid) if self.options.rootless and self.user else []

    # ---- preparation -------------------------------------------------------------------

    def prepare(self) -> None:
        options = self.options
        reason = unavailable_reason(options.rootless, podman_path() is not None)
        if reason is not None:
            raise SetupError(reason)
        self._podman = Podman(self.user)
        self._info = self.podman.info()
        try:
            self._image = self.app.container_image(self.client(), progress=self.progress,
                                                   base_image=options.base_image)
        except SetupError:
            raise
        except Exception as error:
            raise SetupError(f"cannot build the container image: {engine.explain(error)}") from None
        self._refuse_what_this_host_cannot()
        loads: list[subprocess.Popen] = []
        try:
            ensure_loaded(self.client(), self._image.tag, self._image.image_id, self._image_exists,
                          lambda: self._start_load(loads), self.progress)
        except BaseException:  # an interrupt may land before ensure_loaded holds the load it started
            for load in loads:
                load.kill()
                load.communicate()
            raise
        self._runtime = runtimes.RuntimeInfo(options.runtime, options.runtime, (),
                                             runtimes.release_of(options.runtime))
        if options.runtime != runtimes.DEFAULT_RUNTIME:
            self._probe_runtime()

    def _refuse_what_this_host_cannot(self) -> None:
        """SetupError, before anything starts, for what rootless Podman cannot do on this host."""
        options = self.options
        if self._rootless_v1 and (options.cpus is not None or options.memory is not None):
            raise SetupError("rootless Podman cannot apply cpus or memory limits on this cgroup v1 host: a rootless "
                             "container gets no cgroup of its own there (it needs cgroup v2 with delegation); use "
                             "rootful Podman or Docker for limits")
        if options.rootless and options.network == "host":
            port = self.app.start(Place(Layer.CONTAINER, self.address, free_port(self.address), files=self._image)).port
            if port < _unprivileged_port_start():
                raise SetupError(f"rootless Podman cannot listen on port {port} with the host network: ports below "
                                 f"{_unprivileged_port_start()} need root on this host")

    def _start_load(self, loads: list) -> subprocess.Popen:
        """`podman load` reading stdin, in `loads` before an interrupt can land."""
        with signals_deferred():
            loads.append(self.podman.popen("load"))
        return loads[-1]

    def _image_exists(self, image_id: str) -> bool:
        return self.podman.run("image", "exists", image_id, check=False).returncode == 0

    def _ensure_image_present(self) -> None:
        if self._image is None or not self._image_exists(self._image.image_id.removeprefix("sha256:")):
            self.prepare()

    def _probe_runtime(self) -> None:
        """A throwaway container of the app on the variant's runtime, removed at once: SetupError with
        Podman's words and the fix when the runtime cannot start one here (crun on a cgroup v1 host)."""
        name = f"{self._new_name()}-probe"
        args, _ = self._run_arguments_podman(name, free_port(self.address), None)
        try:
            result = self.podman.run("run", "--detach", *args, check=False)
            if result.returncode != 0:
                raise SetupError(runtimes.cannot_run(self.options.runtime, words.podman_words(result.stderr)))
            time.sleep(runtimes.PROBE_SETTLE_S)
            state = self.podman.run("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name,
                                     check=False).stdout.split()
            if state[:1] == ["exited"] and state[1:] != ["0"]:
                raise SetupError(runtimes.cannot_run(self.options.runtime, f"the probe container exited {state[1:]}"))
        finally:
            self.podman.remove(name)

    # ---- lifecycle ---------------------------------------------------------------------

    def _new_name(self) -> str:
        return re.sub(r"[^a-zA-Z0-9_.-]", "-", f"layerbench-{self.run_id}-{secrets.token_hex(4)}")

    def _run_arguments_podman(self, name: str, port: int, scratch) -> tuple[list[str], int]:
        """`podman run` arguments for the app, and the host port it will answer on."""
        options = self.options
        host_network = options.network == "host"
        listen = (self.address, port) if host_network else ("0.0.0.0", APP_PORT_IN_GUEST)
        start = self.app.start(Place(Layer.CONTAINER, *listen, files=self._image))
        if host_network:
            if start.port != port and port_in_use(start.port, self.address):
                raise SetupError(f"port {start.port} on this host is taken, and the image listens on that port only")
            port = start.port
        plan = RunPlan(name=name, run_id=self.run_id, image_id=self._image.image_id.removeprefix("sha256:"),
                       runtime=options.runtime, network=options.network, address=self.address, host_port=port,
                       cgroups=not self._rootless_v1, cpuset=",".join(map(str, self.pinning.app_cpus)),
                       cpus=options.cpus, memory=options.memory,
                       port_handler=options.port_handler if options.rootless else None,
                       ulimits=ulimit_args(options.rootless))
        return run_args(plan, start, scratch, writable_root=options.scratch == "overlay"), port

    def _launch(self) -> Instance:
        began = time.perf_counter()
        self._ensure_image_present()
        phases = {"image_s": time.perf_counter() - began}
        options, podman = self.options, self.podman
        name = self._launching = self._new_name()  # _abort_launch removes it by name, even mid-run
        self._scratch = storage.make(options.scratch, f"layerbench-{self.run_id}")
        args, port = self._run_arguments_podman(name, free_port(self.address), self._scratch)
        began = time.perf_counter()
        if self._scratch.volume is not None:
            podman.run("volume", "create", *words.label_args(self.run_id), self._scratch.volume)
        result = podman.run("run", "--detach", *args, cpus=tuple(self.pinning.app_cpus), check=False)
        if result.returncode != 0:
            raise SetupError(words.refused(podman, self.address, port, result.stderr))
        state = (podman.json("inspect", name) or [{}])[0]
        phases["run_s"] = time.perf_counter() - began
        running = self._running(name, state)
        facts = words.facts(self, running, state, args)
        instance = Instance(port=port, processes=lambda: processes(running), phases=phases, facts=facts,
                            engine_accounting=(lambda: engine_accounting(running)) if running.cgroup_dirs else None,
                            handle=running, address=self.address,
                            network_path=netpath.network_path(options, podman, running.init_pid, port))
        self._launching = self._scratch = None  # from here on, _terminate stops it
        return instance

    def _running(self, name: str, state: dict) -> RunningPodman:
        options = self.options
        init_pid = int((state.get("State") or {}).get("Pid") or 0)
        everywhere = tuple(sorted({*self.pinning.app_cpus, *self.pinning.load_cpus}))
        return RunningPodman(podman=self.podman, name=name, container_id=str(state.get("Id", "")), init_pid=init_pid,
                             conmon_pid=int((state.get("State") or {}).get("ConmonPid") or 0),
                             netns=str((state.get("NetworkSettings") or {}).get("SandboxKey") or ""),
                             cgroup_dirs=own_cgroup_dirs(cgroup_dirs(init_pid), str(state.get("Id", ""))),
                             helpers_expected=tuple(role.key for role in self._helper_roles()),
                             cpus=tuple(self.pinning.app_cpus) if options.pin_helpers else everywhere,
                             scratch=self._scratch)

    def _abort_launch(self) -> None:
        name, self._launching = self._launching, None
        scratch, self._scratch = self._scratch, None
        if self._podman is not None and name is not None:
            self._podman.remove(name)
        self._drop_scratch(scratch)

    def _terminate(self, instance: Instance) -> None:
        running: RunningPodman = instance.handle  # type: ignore[assignment]
        try:
            result = self.podman.run("rm", "--force", "--volumes", "--time", str(STOP_TIMEOUT_S),
                                      running.name, check=False)
            if result.returncode != 0 and "no such container" not in result.stderr:
                raise SetupError(f"could not remove container {running.name}: {words.podman_words(result.stderr)}; "
                                 f"run `bench clean`")
        finally:
            self._drop_scratch(running.scratch)

    def _drop_scratch(self, scratch) -> None:
        if scratch is not None and scratch.volume is not None and self._podman is not None:
            self._podman.remove_volume(scratch.volume)
        storage.remove_directory(scratch)

    def diagnose(self, instance: Instance) -> str:
        running: RunningPodman = instance.handle  # type: ignore[assignment]
        state = self.podman.run("inspect", "--format", "container {{.State.Status}} (exit {{.State.ExitCode}})",
                                 running.name, check=False).stdout.strip()
        logs = self.podman.run("logs", "--tail", "20", running.name, check=False)
        return " | ".join([state or "container unavailable", *(logs.stdout + logs.stderr).strip().splitlines()])


def _unprivileged_port_start() -> int:
    try:
        with open(UNPRIVILEGED_PORT_START) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return 1024
