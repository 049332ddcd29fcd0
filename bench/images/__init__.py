"""Images the setups run: one root filesystem built from the host's own interpreter, then the
container image (`docker_image`) and the VM initramfs made from it, so every layer runs the
very bits the bare process runs."""

import os
from pathlib import Path


def cache_root() -> Path:
    """$XDG_CACHE_HOME/layerbench (default ~/.cache/layerbench): rootfs, kernel, initramfs, VM run dirs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "layerbench"
