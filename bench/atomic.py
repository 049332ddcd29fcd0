"""Writing a file so that a reader never sees half of it: run.json, reports, pages."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from pathlib import Path

DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C and SIGTERM that arrive in the block take effect when it ends, through the handlers
    they were meant for. For serialising a record: pydantic runs a model's own serializer (written
    in Python) inside its compiled code, a KeyboardInterrupt raised there comes out as a
    PydanticSerializationError that names it, and a Ctrl-C became "error, exit 1" instead of an
    interrupted run (4 of 10 SIGINTs sent to a process saving a run in a loop did so). Outside the
    main thread, or when a handler was not set from Python, signals are left as they are."""
    previous = {number: signal.getsignal(number) for number in DEFERRED_SIGNALS}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield
        return
    arrived: list[int] = []
    for number in DEFERRED_SIGNALS:
        signal.signal(number, lambda number, frame: arrived.append(number))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if arrived:
            signal.raise_signal(arrived[0])


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
