"""The one QMP conversation layerbench needs: ask QEMU to quit cleanly."""

from __future__ import annotations

import json
import socket
from pathlib import Path


def qmp_quit(socket_path: Path) -> None:
    """Send qmp_capabilities then quit on QEMU's QMP socket; silent if QEMU is not listening."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            client.connect(str(socket_path))
            reader = client.makefile("rb")
            reader.readline()  # greeting
            for command in ("qmp_capabilities", "quit"):
                client.sendall(json.dumps({"execute": command}).encode() + b"\n")
                reader.readline()
    except OSError:
        pass  # the caller's signals take over
