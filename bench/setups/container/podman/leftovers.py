"""What killed runs left in Podman, for root and for the rootless user: containers, volumes, and the
processes a container leaves when its podman was killed halfway (conmon, slirp4netns, rootlessport).

A container or volume is layerbench's when a runner labelled it (RUN_LABEL); it is a leftover
when that runner is gone. Podman's helpers outlive a container only when something went wrong, so:
a conmon named layerbench-... whose container Podman no longer lists is a leftover, and every
helper of the dedicated rootless user is one once that user has no container left (nothing else
runs as that user). Then its pause process goes too: Podman starts it again when next needed.
"""

from __future__ import annotations

import os
from datetime import datetime

import psutil

from bench.errors import SetupError
from bench.setups.container.engine import PID_LABEL, RUN_LABEL
from bench.setups.container.podman.attribution import HELPER_NAMES, pause_processes
from bench.setups.container.podman.cli import Podman, podman_path
from bench.setups.container.podman.user import ROOT, PodmanUser, rootless_user

NAME_PREFIX = "layerbench-"


def podmen() -> list[Podman]:
    """The Podman stores this runner can look into: root's (as root) and the rootless user's."""
    if podman_path() is None:
        return []
    found = [Podman(ROOT)] if os.geteuid() == 0 else []
    user = rootless_user()
    if user is not None and os.geteuid() in (0, user.uid):
        found.append(Podman(user))
    return found


def _runner_gone(labels: dict, created_s: float | None) -> bool:
    """True when the runner that labelled it has exited (a process that got its pid since, started
    after the thing was created, does not count as it)."""
    try:
        runner = psutil.Process(int((labels or {}).get(PID_LABEL, "0") or 0))
        return created_s is None or runner.create_time() > created_s + 1.0
    except (psutil.Error, ValueError):
        return True


def _created_s(value) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    try:  # "2026-12-07T12:00:00.123456789Z" or with an offset
        text = str(value)
        return datetime.fromisoformat(text[:19] + (text[-6:] if text[-6] in "+-" else "+00:00")).timestamp()
    except (ValueError, IndexError):
        return None


def _containers(podman: Podman) -> list[dict]:
    found = podman.json("ps", "--all", "--format", "json")
    return found if isinstance(found, list) else []


def _ours(entries: list[dict], run_id: str | None, created_key: str) -> list[dict]:
    """Entries a runner labelled (only run_id's, when given) whose runner is gone."""
    return [entry for entry in entries if RUN_LABEL in (entry.get("Labels") or {})
            and run_id in (None, (entry.get("Labels") or {}).get(RUN_LABEL))
            and _runner_gone(entry.get("Labels") or {}, _created_s(entry.get(created_key)))]


def find() -> list[str]:
    """One line per container of a dead runner, in each store."""
    lines = []
    for podman in podmen():
        try:
            lines += [f"{podman.who}: container {(entry.get('Names') or ['?'])[0]}"
                      for entry in _ours(_containers(podman), None, "Created")]
        except SetupError:
            continue
    return lines


def clean(run_id: str | None = None) -> list[str]:
    """Remove dead runners' containers and volumes (only run_id's, when given) in each store, then the
    helpers they left; one line per thing removed."""
    removed = []
    for podman in podmen():
        try:
            removed += _clean_store(podman, run_id)
        except SetupError as error:
            removed.append(f"{podman.who}: could not clean: {error}")
    return removed


def _clean_store(podman: Podman, run_id: str | None) -> list[str]:
    removed = [f"{podman.who}: container {(entry.get('Names') or ['?'])[0]}"
               for entry in _ours(_containers(podman), run_id, "Created") if podman.remove(entry["Id"])]
    volumes = podman.json("volume", "ls", "--format", "json") or []
    removed += [f"{podman.who}: volume {entry['Name']}" for entry in _ours(volumes, run_id, "CreatedAt")
                if podman.remove_volume(entry["Name"])]
    left = _containers(podman)
    if podman.user.rootless:
        # Nothing of this user runs and no podman command of it is under way: every helper of it is a
        # leftover, and so is its pause process.
        if not left and not _podman_at_work(podman.user.uid):
            removed += _kill(podman.user, _helpers_of(podman.user.uid) +
                             [role_process.process for role_process in pause_processes(podman.user.uid)])
    else:
        removed += _kill(podman.user, _stray_conmons({entry["Id"] for entry in left}))
    return removed


def _helpers_of(uid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "uids", "status"]):
        uids = process.info["uids"]
        if uids is not None and uids.real == uid and process.info["name"] in HELPER_NAMES \
                and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _podman_at_work(uid: int) -> bool:
    """True while a podman command of that user runs (a create in flight, whose helpers are not yet
    listed with a container); its pause process, `podman -P` in some versions, does not count."""
    for process in psutil.process_iter(["name", "uids", "cmdline"]):
        uids = process.info["uids"]
        if uids is not None and uids.real == uid and process.info["name"] == "podman" \
                and (process.info["cmdline"] or [])[-1:] != ["-P"]:
            return True
    return False


def _stray_conmons(known_ids: set[str]) -> list[psutil.Process]:
    """Root's conmons of layerbench containers Podman no longer lists."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] != "conmon" or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        flags = {cmdline[i]: cmdline[i + 1] for i in range(len(cmdline) - 1) if cmdline[i].startswith("-")}
        if flags.get("-n", "").startswith(NAME_PREFIX) and flags.get("-c") not in known_ids:
            found.append(process)
    return found


def _kill(user: PodmanUser, victims: list[psutil.Process]) -> list[str]:
    lines = []
    for process in victims:
        try:
            name = process.name()
            process.kill()
            lines.append(f"{user.name}'s {name} pid {process.pid}")
        except psutil.Error:
            continue
    psutil.wait_procs(victims, timeout=5)
    return lines
