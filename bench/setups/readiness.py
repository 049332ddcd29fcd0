"""Readiness: poll the app until its first HTTP 200, with a deadline and a fast fail on exit."""

from __future__ import annotations

import http.client
import time
from typing import Callable

from bench.errors import SetupError
from bench.netutil import LOOPBACK
from bench.setups.procutil import handle_exited


def wait_until_ready(port: int, handle: object, deadline_s: float, on_fail: Callable[[], str] = lambda: "",
                     path: str = "/health", address: str = LOOPBACK) -> None:
    """Poll GET path on address:port (127.0.0.1 unless the run is split) until it answers 200; SetupError after deadline_s.

    `handle` (a Popen, a container's state) is asked whether the app exited, so a dead app fails
    at once instead of after the whole deadline.
    """
    give_up = time.monotonic() + deadline_s
    last_error = "no answer"
    delay = 0.005
    while time.monotonic() < give_up:
        # Ask the handle (Popen.poll, a container's state): psutil calls an unreaped zombie "running".
        if handle is not None and handle_exited(handle):
            detail = on_fail()
            raise SetupError(f"the app exited before answering {path}{': ' + detail if detail else ''}")
        # A short timeout: a port forward (QEMU's hostfwd) accepts at once and then hangs until
        # the guest listens; a long timeout would round every start-up up to it.
        connection = http.client.HTTPConnection(address, port, timeout=0.5)
        try:
            connection.request("GET", path)
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
    raise SetupError(f"no HTTP 200 on {path} within {deadline_s:.0f} s (last: {last_error})"
                     + (f"; {detail}" if detail else ""))
