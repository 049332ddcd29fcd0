"""The app's image in Podman, without a registry: `docker save | podman load` of the very image the
Docker container runs (same layers, same image id), once per image and per Podman store (root's,
the rootless user's). Nothing is ever pulled.

Podman is reached through two callables the setup gives (whether an image id is present; a
started `podman load` reading stdin), so this module knows nothing of users or sessions.
"""

from __future__ import annotations

import subprocess
from typing import Callable

from bench.errors import SetupError

CHUNK_BYTES = 1 << 20
LOAD_TIMEOUT_S = 300


def ensure_loaded(client, reference: str, image_id: str, exists: Callable[[str], bool],
                  start_load: Callable[[], subprocess.Popen], progress: Callable[[str], None] = lambda m: None) -> bool:
    """Make `image_id` present in Podman's store by streaming `docker save reference` into `podman load`;
    False when it was there already. `reference` is a tag where there is one, so Podman keeps the name."""
    podman_id = image_id.removeprefix("sha256:")
    if exists(podman_id):
        progress(f"image already in Podman's store: {podman_id[:12]}")
        return False
    progress(f"loading {reference} into Podman (docker save | podman load)")
    load = start_load()
    try:
        _stream(client, reference, load)
        _, errors = load.communicate(timeout=LOAD_TIMEOUT_S)
    except BaseException:
        load.kill()
        load.communicate()
        raise
    if load.returncode != 0:
        raise SetupError(f"podman load failed: {' '.join((errors or b'').decode(errors='replace').split())[-300:]}")
    if not exists(podman_id):
        raise SetupError(f"podman load finished, but image {podman_id[:12]} is not in Podman's store")
    return True


def _stream(client, reference: str, load: subprocess.Popen) -> None:
    """docker save, chunk by chunk, into the load's stdin (no temp file: the image is ~30 MB);
    communicate() closes it afterwards."""
    try:
        for chunk in client.api.get_image(reference, chunk_size=CHUNK_BYTES):
            load.stdin.write(chunk)
    except BrokenPipeError:
        pass  # podman load stopped reading: its exit status and words say why
    except Exception as error:
        raise SetupError(f"docker save {reference} failed: {error}") from None
