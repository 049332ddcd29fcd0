"""Signals during a load: a caller's Python signal handler that raises (the runner turns SIGTERM
into RunInterrupted) raises wherever the main thread happens to be. Inside a uvloop protocol
callback, uvloop logs that exception as a transport error and goes on, so the run would not stop.
While the event loop runs, a stand-in handler only stops the loop; the caller's own handler then
runs outside it, where its exception propagates as intended.

SIGINT with Python's default handler is left to asyncio.Runner, which cancels the load and raises
KeyboardInterrupt on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _callers_handlers() -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread receives signals in Python
    handlers = {}
    for number in _SIGNALS:
        handler = signal.getsignal(number)
        if callable(handler) and handler is not signal.default_int_handler:
            handlers[number] = handler
    return handlers


@contextlib.contextmanager
def stop_loop_on_signals(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Around `runner.run(...)`: a signal stops `loop`, then the caller's handler runs here."""
    handlers = _callers_handlers()
    received: list[tuple[int, object]] = []

    def stand_in(number, frame):
        received.append((number, frame))
        loop.stop()

    for number in handlers:
        signal.signal(number, stand_in)
    try:
        yield
    except RuntimeError:
        if not received:  # "Event loop stopped before Future completed" is ours; anything else is not
            raise
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    if received:
        number, frame = received[0]
        handlers[number](number, frame)
        raise RuntimeError(f"the load was stopped by signal {signal.Signals(number).name}")
