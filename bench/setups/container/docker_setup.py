"""The Docker engine's variants of the container setup (`engine: docker`, the default): the app's
image run through the Docker SDK, on the user's dockerd or on the run's private one.

The declaration and the words are the container setup's (bench.setups.container); this class
prepares the image and the runtime in Docker, launches, stops and diagnoses the container, and
owns Docker's part of `bench doctor` and `bench clean`.
"""

from __future__ import annotations

import os
import re
import secrets
import time

from bench.app.command import APP_PORT_IN_GUEST
from bench.apps.base import Layer, Place
from bench.errors import SetupError
from bench.netutil import free_port, port_in_use
from bench.setups.base import Instance
from bench.setups.container import (ContainerOptions, ContainerSetup, engine, engines, networking, private_engine,
                                    runtimes, shims, storage)
from bench.setups.container.attribution import RunningContainer, cgroup_dirs, engine_accounting, processes

STOP_TIMEOUT_S = 5


@engines.VARIANTS.register
class DockerContainerSetup(ContainerSetup):
    """The container setup with Docker as its engine (chosen by ContainerSetup.__new__)."""

    engine_name = "docker"

    # ---- Docker's part of `bench doctor` and `bench clean` -----------------------------------

    @classmethod
    def engine_doctor_lines(cls) -> list[str]:
        with engine.client_if_daemon(10) as client:
            try:
                version = client.version() if client is not None else None
                return [f"Docker engine {version.get('Version')}, cgroup v{client.info().get('CgroupVersion', '?')}",
                        *runtimes.doctor_lines(client)] if version is not None else []
            except Exception:
                return []

    @classmethod
    def engine_leftovers(cls) -> list[str]:
        return (engine.find_leftovers() + [shim.describe() for shim in shims.docker_orphans()]
                + private_engine.find_leftovers())

    @classmethod
    def engine_clean(cls, run_id: str | None) -> list[str]:
        removed = engine.clean_leftovers(run_id) + engine.clean_volumes(run_id)
        removed += [shim.describe() for shim in shims.docker_orphans()
                    if (run_id is None or shim.run_id == run_id) and shims.remove(shim)]
        return removed + private_engine.clean_leftovers(run_id)

    # ---- preparation -------------------------------------------------------------------

    def prepare(self) -> None:
        self._refuse_split_for_network_variants()
        self._prepare_image()
        self._start_private_engine_if_asked()

    def _prepare_image(self) -> None:
        try:
            self._image = self.app.container_image(self.client(), progress=self.progress,
                                                   base_image=self.options.base_image)  # type: ignore[attr-defined]
        except SetupError:
            raise
        except Exception as error:
            hint = "; without a registry drop base_image to use the scratch image" \
                if self.options.base_image else ""  # type: ignore[attr-defined]
            raise SetupError(f"cannot build the container image: {engine.explain(error)}{hint}") from None
        self._runtime = runtimes.runtime_info(self.client(), self.options.runtime)  # type: ignore[attr-defined]
        self._data_root = storage.docker_data_root(self.client())
        if self._runtime.name != runtimes.DEFAULT_RUNTIME:  # Docker's own runtime needs no probe
            self._probe_runtime()

    def _probe_runtime(self) -> None:
        """A throwaway container of the app with its own flags on this runtime, removed once started:
        SetupError with the engine's words and the fix when the runtime cannot start one here
        (crun on a cgroup v1 host)."""
        kwargs, _ = self._run_arguments(free_port(self.address))
        failure = runtimes.probe(self.client(), kwargs)
        if failure is not None:
            raise SetupError(runtimes.cannot_run(self._runtime.name, failure))  # type: ignore[union-attr]

    # ---- lifecycle ---------------------------------------------------------------------

    def _launch(self) -> Instance:
        began = time.perf_counter()
        self._ensure_image_present()
        phases = {"image_s": time.perf_counter() - began}
        self._scratch = storage.make(self.options.scratch, f"layerbench-{self.run_id}")  # type: ignore[attr-defined]
        kwargs, port = self._run_arguments(free_port(self.address), self._scratch)
        self._launching = kwargs["name"]  # _abort_launch removes it by name, even mid-create
        began = time.perf_counter()
        container = self._create(kwargs)
        phases["create_s"] = time.perf_counter() - began
        began = time.perf_counter()
        self._start(container, port)
        phases["start_s"] = time.perf_counter() - began
        init_pid = int(container.attrs["State"].get("Pid") or 0)
        options: ContainerOptions = self.options  # type: ignore[assignment]
        proxied = options.network == "bridge" and options.reach == networking.PUBLISHED and options.userland_proxy
        running = RunningContainer(container=container, init_pid=init_pid, cgroup_dirs=cgroup_dirs(init_pid),
                                   proxy_port=port if proxied else None,
                                   cpus=tuple(self.pinning.app_cpus) if options.pin_helpers else (),
                                   scratch=self._scratch)
        address, path = self._network_path(container, init_pid, port)  # NetworkVariants
        facts = {
            "container_id": container.id, "container_name": container.name,
            "image_tag": self._image.tag, "image_id": self._image.image_id,
            "image_size_bytes": self._image.size_bytes, "network": options.network,
            "cpus": options.cpus, "memory": options.memory, "base_image": options.base_image,
            "scratch": options.scratch, "cpuset": kwargs["cpuset_cpus"], "init_pid": init_pid,
            "cgroup_version": 2 if "" in running.cgroup_dirs else 1, "read_only": kwargs["read_only"],
            "user": kwargs.get("user") or "the image's own", "cap_add": kwargs.get("cap_add", []),
            **(self._runtime.facts() if self._runtime else {"runtime": options.runtime}),
            "userland_proxy": options.userland_proxy, "reach": options.reach, **path.facts,
        }
        instance = Instance(port=port, processes=lambda: processes(running), phases=phases, facts=facts,
                            engine_accounting=lambda: engine_accounting(running), handle=running,
                            address=address, network_path=path)
        self._launching = self._scratch = None  # from here on, _terminate stops it
        return instance

    def _run_arguments(self, port: int, scratch: storage.Scratch | None = None) -> tuple[dict, int]:
        """The locked-down `docker run` of the app (uid 65534, no capabilities, one host address only:
        127.0.0.1, or the split run's address; where the app allows), and the host port it will answer on."""
        options: ContainerOptions = self.options  # type: ignore[assignment]
        name = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"layerbench-{self.run_id}-{secrets.token_hex(4)}")
        host_network = options.network == "host"
        listen = (self.address, port) if host_network else ("0.0.0.0", APP_PORT_IN_GUEST)
        start = self.app.start(Place(Layer.CONTAINER, *listen, files=self._image))
        read_only = start.read_only_root and options.scratch != "overlay"  # overlay: /tmp on the writable layer
        labels = {engine.LABEL: "1", engine.RUN_LABEL: self.run_id, engine.PID_LABEL: str(os.getpid())}
        kwargs = dict(
            image=self._image.tag, name=name, detach=True, labels=labels,
            read_only=read_only, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            cpuset_cpus=",".join(str(cpu) for cpu in self.pinning.app_cpus),
            **storage.docker_kwargs(scratch, read_only, labels),
            **({"user": f"{start.user[0]}:{start.user[1]}"} if start.user is not None else {}),
            **({"command": start.argv} if start.argv is not None else {}),
            **({"cap_add": list(start.cap_add)} if start.cap_add else {}),
            runtime=options.runtime,
            # In containerd's record too (Docker's labels are not): `bench clean --run` finds its shims.
            environment={**(start.env or {}), shims.RUN_ENV: self.run_id},  # env None: the image's own
        )
        if host_network:
            if start.port != port and port_in_use(start.port, self.address):
                raise SetupError(f"port {start.port} on this host is taken, and the image listens on that port only")
            kwargs.update(network_mode="host")
            port = start.port
        elif options.reach == networking.CONTAINER_IP:  # nothing published: the load goes to the container's IP
            port = start.port
        else:
            kwargs.update(ports={f"{start.port}/tcp": (self.address, port)})  # that address only
        if options.cpus is not None:
            kwargs["nano_cpus"] = int(options.cpus * 1e9)
        if options.memory is not None:
            kwargs["mem_limit"] = options.memory
        return kwargs, port

    def _create(self, kwargs: dict):
        docker = engine.docker_sdk()
        try:
            return self.client().containers.create(**kwargs)
        except docker.errors.APIError as error:
            raise SetupError(f"the engine refused the container: {engine.explain(error)}") from None
        except Exception as error:
            raise SetupError(f"Docker daemon stopped answering: {engine.explain(error)}") from None

    def _start(self, container, port: int) -> None:
        docker = engine.docker_sdk()
        try:
            container.start()
            container.reload()
        except Exception as error:
            explanation = engine.explain(error)
            if "address already in use" in explanation or "port is already allocated" in explanation:
                raise SetupError(f"port {self.address}:{port} is taken; try again ({explanation})") from None
            if isinstance(error, docker.errors.APIError):
                raise SetupError(f"the engine could not start the container: {explanation}") from None
            raise SetupError(f"Docker daemon stopped answering: {explanation}") from None

    def _abort_launch(self) -> None:
        name, self._launching = self._launching, None
        client = self._live_client()
        if name is not None and client is not None:  # no client: nothing was created
            container_id = engine.id_of(client, name)
            engine.remove_by_name(client, name)
            if container_id:  # a failed gVisor start leaves its shim, sentry and gofer behind
                shims.remove_shims_of(container_id)
        scratch, self._scratch = self._scratch, None
        storage.drop_docker(client, scratch)

    def _live_client(self):
        """The client of the engine that runs this variant's containers (None: none was made)."""
        return self._engine.client if self._engine is not None else self._client

    def _terminate(self, instance: Instance) -> None:
        try:
            engine.stop_and_remove(instance.handle.container, STOP_TIMEOUT_S)  # type: ignore[attr-defined]
        finally:  # its volume or bind folder goes once the container is gone
            storage.drop_docker(self._live_client(), instance.handle.scratch)  # type: ignore[attr-defined]

    def diagnose(self, instance: Instance) -> str:
        return engine.diagnose(instance.handle.container)  # type: ignore[attr-defined]

    def _ensure_image_present(self) -> None:
        # Cheap when prepared: one inspect. Rebuilds if someone removed the image meanwhile.
        if self._image is not None:
            try:
                self.client().images.get(self._image.tag)
                return
            except engine.docker_sdk().errors.ImageNotFound:
                self._image = None
            except Exception as error:
                raise SetupError(f"Docker daemon stopped answering: {engine.explain(error)}") from None
        self.prepare()
