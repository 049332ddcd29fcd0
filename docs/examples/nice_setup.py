"""A worked example of a setup (docs/extending.md): the app as a host process at the lowest CPU
priority (nice 19), to show what a busy neighbour costs an app that yields to everyone."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import psutil

from bench.apps.base import Layer, Place
from bench.netutil import free_port
from bench.roles import APP, RoleProcess
from bench.setups.base import Instance, Setup
from bench.setups.registry import register

NICENESS = 19


@register
class NiceSetup(Setup):
    # The declaration: stored with every run, so every output shows the layer without knowing it.
    name = "nice"
    stack = "app (nice 19) → host kernel → hardware"
    narration = "the app as a plain process at the lowest CPU priority: every other process goes first."
    explanation = ("The app runs as an ordinary host process at nice 19: the kernel's scheduler gives it the "
                   "CPU only when nothing of a higher priority wants it.")
    colour = "#8c564b"
    order = 90
    stack_layers = ("hardware", "host kernel", "app")
    runs_app_as = Layer.HOST  # the place it gives the app's start, and which app notes it shows

    @classmethod
    def check(cls) -> str | None:
        return None  # nothing to install: os.nice is everywhere

    def caveats(self) -> list[str]:
        return ["At nice 19 the app yields the CPU to every other runnable process: on a shared machine its "
                "figures measure the neighbours as much as the app."]

    def _launch(self) -> Instance:
        began = time.perf_counter()
        start = self.app.start(Place(Layer.HOST, self.address, free_port(self.address)))  # the app's one description
        popen = subprocess.Popen(start.argv, env=start.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True,
                                 preexec_fn=lambda: os.nice(NICENESS))
        os.sched_setaffinity(popen.pid, self.pinning.app_cpus)
        app = psutil.Process(popen.pid)
        return Instance(port=start.port, processes=lambda: [RoleProcess(APP.key, app)],
                        phases={"spawn_s": time.perf_counter() - began}, facts={"niceness": NICENESS},
                        handle=(popen, start), address=self.address)

    def _terminate(self, instance: Instance) -> None:
        if instance.handle is None:
            return  # stopped already: _terminate must be safe to call twice
        popen, start = instance.handle
        instance.handle = None
        if popen.poll() is None:
            popen.send_signal(start.stop_signal)
            try:
                popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        if start.scratch is not None:
            shutil.rmtree(start.scratch, ignore_errors=True)
