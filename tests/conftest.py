"""Shared fixtures. Engines are real: a missing one skips in a developer's shell and fails in CI."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The width of the terminal pytest runs in, or the 80 columns pytest-xdist gives its workers, must not
# reach bench's consoles (created at import): tests that print tables pass COLUMNS to the command.
os.environ.pop("COLUMNS", None)


def require(available: bool, reason: str) -> None:
    """Skip when something the test needs is missing; in CI (which installs it) fail instead."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def pinning_of_this_worker():
    """Under pytest-xdist, the second worker pins the other way round (app side on the first CPU,
    load on the rest), so two workers' apps and QEMUs do not queue on one CPU while the other idles."""
    from bench.setups.base import Pinning

    cpus = sorted(os.sched_getaffinity(0))
    if os.environ.get("PYTEST_XDIST_WORKER") != "gw1" or len(cpus) < 2:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pinning, "default", classmethod(lambda cls: cls(app_cpus=(cpus[0],), load_cpus=tuple(cpus[1:]))))
        yield


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Tests that take sole_cleaner (below) run in one xdist worker, one after another, unless they
    belong to a group already (the test hosts', Podman's): then the other worker goes on with other
    tests instead of waiting on the lock."""
    for item in items:
        if "sole_cleaner" in getattr(item, "fixturenames", ()) and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("sole_cleaner"))


@pytest.fixture
def sole_cleaner():
    """For a test that kills a runner and then runs `bench clean` for the whole machine: no other such test
    runs meanwhile. Otherwise one worker's clean removes the other's deliberate leftovers (they belong to a
    dead runner, so that clean is right to), and both tests fail. Held from before the kill to the end.
    Also for a test that asserts a run's whole stderr: a run warns of another test's deliberate leftover."""
    with open("/tmp/layerbench-tests-clean.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def serving(server):
    """Serve a socketserver from a thread for the block; yields the server. Always shut down."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serve_app(handler=None, server_class=None):
    """The real app served from a thread in this process; yields its 127.0.0.1 port."""
    from bench.app.server import Handler, Server

    with serving((server_class or Server)(("127.0.0.1", 0), handler or Handler)) as server:
        yield server.server_address[1]


@pytest.fixture(scope="session")
def app_server():
    """The real app, shared by the unit tests that only need it to answer."""
    with serve_app() as port:
        yield port


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Unit tests draw stand-in charts (unless marked `real_charts`), send no load through the runner
    and ask no engine for leftovers (tests/unit/conftest.py says why); every other test does all three
    for real. Set before the test's fixtures are made, module-scoped ones included: one session runs
    both folders."""
    import bench.runner
    from matplotlib.figure import Figure

    from bench.setups.container import ContainerSetup
    from tests import chart_stand_in

    real_generator_for = _real_generator_for()  # the first call comes before any replacement
    real_container_leftovers = _real_container_leftovers()
    unit = item.path.relative_to(TESTS).parts[:1] == ("unit",)
    real_charts = not unit or item.get_closest_marker("real_charts") is not None
    Figure.savefig = chart_stand_in.REAL_SAVEFIG if real_charts else chart_stand_in.stand_in_savefig
    bench.runner.generator_for = _unit_generator if unit else real_generator_for
    # `bench run` looks for leftovers first, which asks Docker and Podman (podman ps: ~60 ms of CPU); a unit
    # test asks no engine. The search itself is tested against the engines in tests/integration.
    ContainerSetup.find_leftovers = _no_engine_leftovers if unit else real_container_leftovers


@functools.cache
def _real_generator_for():
    """bench.runner's own generator_for, as it was before any test replaced it."""
    import bench.runner

    return bench.runner.generator_for


@functools.cache
def _real_container_leftovers():
    """The container setup's own find_leftovers (the classmethod), as it was before any test replaced it."""
    from bench.setups.container import ContainerSetup

    return ContainerSetup.__dict__["find_leftovers"]


@classmethod
def _no_engine_leftovers(cls) -> list[str]:
    return []


@functools.cache
def _unit_load():
    from tests.stand_ins import fake_load_with

    return fake_load_with(0.12)


def _unit_generator(pinning):
    """The runner's generator in unit tests: seeded figures in a 0.12 s window, no request sent."""
    return _unit_load()
