"""Setting up a split run: the load host made ready, the address the target's app will listen on,
both machines described, and the words that say so at the start. Runs beside the target's own
preparation; the target waits for it before it starts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from bench import machine
from bench.events import Event, ProgressFn
from bench.fleet.hostsfile import LOCAL_HOST, HostEntry
from bench.fleet.remote import RemotePlace
from bench.fleet.split import LocalLoad, RemoteLoad, listen_address
from bench.netutil import LOOPBACK
from bench.results import now_iso

DESCRIBE = "import json, bench.machine as m; print(json.dumps(m.describe()))"


def describe(place: RemotePlace | None) -> dict:
    """The load host's machine block, as `bench run` records its own (from its venv)."""
    if place is None:
        return machine.describe()
    out = place.ssh.check(f"cd && {place.probe.venv}/bin/python -c {shlex.quote(DESCRIBE)}", "describe the load host")
    return json.loads(out.strip().splitlines()[-1])


def announcement(split: dict, target: str) -> str:
    """The line every split run prints first: the loopback-only rule is relaxed, and where."""
    return (f"split run: the app on {target} listens on {split['listen_address']} only (the address "
            f"{split['load_host']} reaches; not {LOOPBACK}, not every interface); load from {split['load_host']} "
            f"({split['load_address']})")


def prepare_split(fleet, target_run) -> tuple[dict, object]:
    """(the job's split fields, the relay that runs the load) for the fleet's one target."""
    load: HostEntry = fleet.load_from
    fleet.update(load.name, status="preparing", started_at=now_iso())
    try:
        load_place = None if load.is_local else fleet.place(load)
        if load_place is not None:
            fleet.say(load.name, f"load host: reaching {load.target}")
            done = load_place.prepare(fleet.wheel(), lambda message: fleet.say(load.name, message))
            fleet.update(load.name, installed=done)
        target_place = target_run.place if isinstance(target_run.place, RemotePlace) else None
        address, peer = listen_address(target_run.entry, load, target_place, load_place)
        split = {"load_host": load.name, "load_target": load.target, "load_address": peer,
                 "listen_address": address, "load_machine": describe(load_place)}
    except BaseException as error:
        fleet.update(load.name, status="failed", error=str(error), finished_at=now_iso())
        raise
    fleet.update(load.name, status="complete", finished_at=now_iso())
    fleet.set_split({key: value for key, value in split.items() if key != "load_machine"})
    fleet.emit(Event("split", announcement(split, target_run.name), data={"host": target_run.name}))
    relay = LocalLoad() if load_place is None else RemoteLoad(load_place, address)
    return {"listen_address": address, "relay_load": True, "split": split}, relay


def split_here(scenario, load: HostEntry, out: Path, progress: ProgressFn, command_line: list[str],
               say=lambda line: None) -> Path:
    """A split run with this machine as the target: the ordinary Runner, its load from `load`."""
    from bench.fleet.ssh import SshSession
    from bench.fleet.wheel import build_wheel
    from bench.runner import Runner

    with SshSession() as session:
        place = RemotePlace(session.to(load))
        say(f"{load.name}: {place.prepare(build_wheel(), say)}")
        address, peer = listen_address(LOCAL_HOST, load, None, place)
        split = {"load_host": load.name, "load_target": load.target, "load_address": peer,
                 "listen_address": address, "load_machine": describe(place)}
        say(announcement(split, "this machine"))
        return Runner(scenario, out, progress, command_line, load=RemoteLoad(place, address), address=address,
                      split=split).run()
