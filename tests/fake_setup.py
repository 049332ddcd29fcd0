"""A setup that exists only in the tests: the real app served from a thread of the test process.

It proves the setup contract: declared and registered here, with no file under bench/ touched, it
flows through run, show, report, charts and compare like any shipped setup.
"""

from __future__ import annotations

import subprocess
import threading
import time

import psutil

from bench.roles import Role, RoleProcess
from bench.setups.base import Instance, Options, Setup
from bench.setups.registry import register, unregister

THREAD_ROLE = Role("thread", "app thread (in the test process)", "#117733")
DAEMON_ROLE = Role("testdaemon", "test daemon (once per host)", "#999933")
STACK = ("hardware", "host kernel", "test harness (the measuring process)", "app")
_daemon: list[subprocess.Popen] = []  # the fake engine's daemon, alive while the setup is registered


class InProcessOptions(Options):
    flavour: str = "plain"


class InProcessSetup(Setup):
    name = "inproc"
    stack = "app thread → the test's own process → host kernel"
    narration = "a test-only layer: the app in a thread of the process that measures it."
    explanation = "A setup declared only in tests/: it serves the real app from a thread of the test process."
    colour = "#117733"
    order = 30
    roles = (THREAD_ROLE,)
    stack_layers = STACK
    fixed_roles = (DAEMON_ROLE,)
    Options = InProcessOptions
    ready_deadline_s = 10.0
    launches = 0  # how many times _launch ran (tests read it)

    @classmethod
    def check(cls) -> str | None:
        return None

    def variant(self) -> str:
        return self.options.flavour  # type: ignore[attr-defined]

    def caveats(self) -> list[str]:
        return ["Test-only layer: its figures share a process with the load generator."]

    def fixed_processes(self) -> list[RoleProcess]:
        return [RoleProcess(DAEMON_ROLE.key, psutil.Process(popen.pid)) for popen in _daemon if popen.poll() is None]

    def _launch(self) -> Instance:
        from bench.app.server import Handler, Server

        type(self).launches += 1
        began = time.perf_counter()
        server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True)
        thread.start()
        me = psutil.Process()
        return Instance(port=server.server_address[1], processes=lambda: [RoleProcess(THREAD_ROLE.key, me)],
                        phases={"thread_s": time.perf_counter() - began}, facts={"thread": thread.name},
                        handle=server)

    def _terminate(self, instance: Instance) -> None:
        server = instance.handle
        server.shutdown()
        server.server_close()


def registered():
    """Context manager: InProcessSetup registered for the block."""
    import contextlib

    @contextlib.contextmanager
    def block():
        register(InProcessSetup)
        _daemon.append(subprocess.Popen(["sleep", "600"]))  # its "engine daemon": a fixed cost
        try:
            yield InProcessSetup
        finally:
            unregister(InProcessSetup.name)
            while _daemon:
                popen = _daemon.pop()
                popen.kill()
                popen.wait()
    return block()
