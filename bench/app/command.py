"""How every layer starts the app: one command line, one port inside isolation.

Standard library only, like the rest of bench.app: the bare setup, the container image and the
VM initramfs all build the app's argv here, so the app imports exactly the same modules
everywhere.
"""

from __future__ import annotations

from pathlib import Path

APP_PORT_IN_GUEST = 8080  # the port the app listens on inside a container or VM
APP_DIR = "/usr/local/lib/layerbench"  # holds bench/ inside a rootfs
APP_SIGNATURE = "from bench.app.server import main"  # in every app's command line, in every layer
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding bench/ on the host


def app_argv(python: str, host: str, port: int, app_dir: str = APP_DIR) -> list[str]:
    """The argv that runs the app found under app_dir with this interpreter on host:port.

    -I -S mean no site and no PYTHON* environment, so the app imports exactly the same modules
    everywhere (the bare setup passes the host's folder as app_dir). ssl is marked absent: the app
    never speaks TLS, and http.client (which http.server imports) would otherwise load OpenSSL's
    libssl and libcrypto at every start (~0.1 s of a VM's start under TCG).
    """
    code = f"import sys; sys.path.insert(0, {app_dir!r}); sys.modules['ssl'] = None; {APP_SIGNATURE}; sys.exit(main())"
    return [python, "-I", "-S", "-c", code, "--host", host, "--port", str(port)]
