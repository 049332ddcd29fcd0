"""Talking to the Docker engine: is a daemon there, one client helper, removal, leftovers, images.

The Docker SDK is imported only when a function here needs it, so layerbench works (and parses
scenarios) on machines without the package.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import datetime

import psutil

from bench.errors import SetupError

LABEL = "layerbench"
RUN_LABEL = "layerbench.run"
PID_LABEL = "layerbench.runner-pid"  # lets find_leftovers tell a live run's containers from a dead one's


def docker_sdk():
    import docker  # imported here so the rest of layerbench works without the package

    return docker


def daemon_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def daemon_answers(docker) -> bool:
    # The SDK leaks a socket when connecting to a unix socket fails (docker 7.x unixconn), which
    # warnings-as-errors turns into a failure: probe the socket ourselves first.
    address = daemon_address()
    if address.startswith("unix://"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(2)
                probe.connect(address[len("unix://"):])
        except OSError:
            return False
    # from_env() negotiates the API version while constructing; a client pinned to the oldest
    # version connects only in ping() and is always closed.
    client = docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=5,
                              **docker.utils.kwargs_from_env())
    try:
        return client.ping()
    except Exception:
        return False
    finally:
        client.close()


def unavailable_reason() -> str | None:
    """None when the SDK is installed and a daemon answers; else why not and the fix."""
    try:
        docker = docker_sdk()
    except ImportError:
        return "the docker Python package is missing: pip install 'docker>=7.1'"
    if daemon_answers(docker):
        return None
    # A user's PATH often lacks the sbin folders where dockerd lives: look there too, so an installed
    # engine that is not running is not called "not installed" (bench hosts check logs in as a user).
    folders = [*os.get_exec_path(), "/usr/sbin", "/usr/local/sbin", "/sbin"]
    if not any(os.access(os.path.join(d, "dockerd"), os.X_OK) for d in folders):
        return "Docker is not installed: apt-get install docker.io (or run sudo scripts/host-setup.sh)"
    return f"no Docker daemon answers at {daemon_address()}; start one: sudo scripts/host-setup.sh"


@contextlib.contextmanager
def client_if_daemon(timeout_s: int):
    """A Docker client when the SDK is installed and a daemon answers, else None; always closed."""
    try:
        docker = docker_sdk()
    except ImportError:
        yield None
        return
    if not daemon_answers(docker):
        yield None
        return
    client = docker.from_env(timeout=timeout_s)
    try:
        yield client
    finally:
        client.close()


def explain(error: Exception) -> str:
    """The engine's own words for an error, on one line."""
    explanation = getattr(error, "explanation", None) or str(error) or type(error).__name__
    return " ".join(str(explanation).split())


def remove_quietly(container, raise_connection_errors: bool = False) -> bool:
    """Force-remove; True when removed by this call. Gone already is fine (idempotent)."""
    docker = docker_sdk()
    try:
        container.remove(force=True)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as error:
        if error.status_code == 409:  # "removal already in progress"
            return False
        if raise_connection_errors:
            raise
        return False
    except Exception:
        if raise_connection_errors:
            raise
        return False


def stop_and_remove(container, timeout_s: int) -> None:
    """Stop (timeout_s to exit) and remove a container; gone already is fine. SetupError naming
    `bench clean` when the engine refuses or stops answering."""
    docker = docker_sdk()
    try:
        try:
            container.stop(timeout=timeout_s)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            pass  # already stopping or stopped; remove(force) below settles it
        remove_quietly(container, raise_connection_errors=True)
    except docker.errors.DockerException as error:
        raise SetupError(f"could not remove container {container.name}: {explain(error)}; run `bench clean`") from None
    except Exception as error:  # requests' ConnectionError: the daemon is gone
        raise SetupError(f"Docker daemon stopped answering while removing {container.name}: "
                         f"{explain(error)}; run `bench clean` once it is back") from None


def diagnose(container) -> str:
    """The container's state and its last log lines, on one line."""
    try:
        container.reload()
        state = container.attrs.get("State", {})
        logs = container.logs(tail=20).decode(errors="replace").strip().splitlines()
    except Exception as error:
        return f"container unavailable: {explain(error)}"
    status = f"container {state.get('Status')} (exit {state.get('ExitCode')}" + (
        ", OOM-killed)" if state.get("OOMKilled") else ")")
    return " | ".join([status, *logs])


def remove_by_name(client, name: str) -> None:
    """Force-remove a container by name if it exists (a create the client never saw finish)."""
    docker = docker_sdk()
    try:
        remove_quietly(client.containers.get(name))
    except docker.errors.NotFound:
        pass
    except Exception:  # the daemon is gone: `bench clean` finds it later by its labels
        pass


def id_of(client, name: str) -> str | None:
    """The full id of the container called name, or None (gone, or the daemon does not answer)."""
    try:
        return client.containers.get(name).id
    except Exception:
        return None


def _runner_gone(container) -> bool:
    """True when the runner that created the container has exited (a process that got its pid
    since, started after the container was created, does not count as it)."""
    try:
        runner = psutil.Process(int(container.labels.get(PID_LABEL, "0") or 0))
        created = datetime.fromisoformat(container.attrs["Created"][:19] + "+00:00").timestamp()
        return runner.create_time() > created + 1.0
    except (psutil.Error, ValueError, KeyError, TypeError):
        return True


def find_leftovers() -> list[str]:
    """Containers a layerbench run started whose runner process is gone."""
    with client_if_daemon(10) as client:
        if client is None:
            return []
        try:
            # RUN_LABEL, not LABEL: every container of the layerbench image inherits the image's LABEL,
            # including ones a user started by hand; only the runner sets the run and pid labels.
            containers = client.containers.list(all=True, filters={"label": RUN_LABEL})
        except Exception:  # the daemon went away meanwhile
            return []
        return [f"container {container.name}" for container in containers if _runner_gone(container)]


def clean_leftovers(run_id: str | None = None) -> list[str]:
    """Remove containers a runner labelled (only run_id's, when given) whose runner is gone; a run
    still going keeps its containers. One line per container removed."""
    label = f"{RUN_LABEL}={run_id}" if run_id is not None else RUN_LABEL
    with client_if_daemon(10) as client:
        if client is None:  # no daemon: nothing of ours can be running there
            return []
        try:
            containers = [c for c in client.containers.list(all=True, filters={"label": label}) if _runner_gone(c)]
            return [f"container {container.name}" for container in containers if remove_quietly(container)]
        except Exception:  # the daemon went away meanwhile
            return []


def prune_images() -> list[str]:
    """Remove layerbench/app and layerbench/nginx images built from older inputs (about 30 MB and
    10 MB each); the tags removed."""
    from bench.apps.nginx import NGINX_REPOSITORY, NginxApp
    from bench.images.docker_image import REPOSITORY, remove_images
    from bench.images.rootfs import rootfs_digest

    with client_if_daemon(30) as client:
        if client is None:
            return []
        removed = remove_images(client, keep=(f"{REPOSITORY}:{rootfs_digest()}",))
        if NginxApp.check() is None:  # without nginx here its images cannot be told old from current
            removed += remove_images(client, keep=(f"{NGINX_REPOSITORY}:{NginxApp().tree_digest()}",),
                                     repository=NGINX_REPOSITORY)
        return [f"image {tag}" for tag in removed]


def clean_volumes(run_id: str | None = None) -> list[str]:
    """Remove the scratch volumes (scratch: volume) a runner labelled whose runner is gone (only run_id's,
    when given); a volume still in use by a container stays. One line per volume removed."""
    label = f"{RUN_LABEL}={run_id}" if run_id is not None else RUN_LABEL
    with client_if_daemon(10) as client:
        if client is None:
            return []
        removed = []
        try:
            volumes = client.volumes.list(filters={"label": label})
        except Exception:  # the daemon went away meanwhile
            return []
        for volume in volumes:
            labels = volume.attrs.get("Labels") or {}
            if not _labelled_runner_gone(labels, volume.attrs.get("CreatedAt", "")):
                continue
            try:
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
            except Exception:
                continue
        return removed


def _labelled_runner_gone(labels: dict, created: str) -> bool:
    """_runner_gone for things other than containers: their labels and creation time (ISO 8601)."""
    try:
        runner = psutil.Process(int(labels.get(PID_LABEL, "0") or 0))
        return runner.create_time() > datetime.fromisoformat(created[:19] + "+00:00").timestamp() + 1.0
    except (psutil.Error, ValueError, TypeError):
        return True
