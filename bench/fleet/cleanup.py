"""`bench clean` for fleets: a fleet whose runner was killed (SIGKILL: it could not clean up) still
says "running". For each such fleet this stops what it left on its hosts through the playbook
(the run there stops like Ctrl-C, its run folder comes home, its folder there is removed), takes
this machine's part home, and marks the hosts that never finished as interrupted. Then the
private folders of dead fleet commands (/tmp/lb-ssh-*) go, their ssh masters closed first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.errors import LayerbenchError, ResultsError
from bench.fleet import localdirs
from bench.fleet.record import FINISHED, list_fleets, load_fleet, save_fleet
from bench.results import now_iso

KILLED = "the fleet's runner was killed; bench clean stopped what it left"


def _local_part(fleet_dir: Path, record) -> list[str]:
    """This machine's run folder, left in .work-local by the killed runner, moved home."""
    workdir = fleet_dir / ".work-local"
    outcome = next((host for host in record.targets if host.name == "local"), None)
    if not workdir.is_dir():
        return []
    found = [path for path in workdir.iterdir() if (path / "run.json").is_file()]
    if outcome is not None and len(found) == 1 and not (fleet_dir / "local").exists():
        found[0].rename(fleet_dir / "local")
        outcome.run_dir, outcome.run_id = "local", found[0].name
    shutil.rmtree(workdir, ignore_errors=True)
    return [f"the work folder of fleet {record.fleet_id} here (its run folder taken home)"] if found else []


def _remote_part(fleet_dir: Path, record) -> list[str]:
    """Stop and remove the fleet's runs on its hosts; their run folders come home."""
    from bench.fleet.engine import Listener, Playbook, require_ansible
    from bench.fleet.inventory import Inventory
    from bench.fleet.orchestrate import STOP_WAIT_S, unpack_run
    from bench.fleet.engine import WAIT_S

    names = [host.name for host in record.targets if host.name != "local" and host.status not in FINISHED]
    if not names:
        return []
    where = f"~/.cache/layerbench/fleet/runs/{record.fleet_id} on {', '.join(names)}"
    if not record.inventory or not Path(record.inventory).exists():
        return [f"nothing on the hosts of fleet {record.fleet_id}: its inventory {record.inventory} is gone; "
                f"remove {where} by hand"]
    try:
        require_ansible()
        inventory = Inventory(Path(record.inventory), explicit=record.inventory_named)
        inventory.select(names)  # the same rule as at run time (a file nobody named runs nothing here)
        with localdirs.LocalFolder() as folder:
            outcome = Playbook(inventory, folder, Listener()).run(
                names, ["stop", "finish"], {"lb_fleet_id": record.fleet_id, "lb_version": "-", "lb_wheel": "-",
                                            "lb_stopping": True, "lb_watch_retries": STOP_WAIT_S // WAIT_S})
            lines = []
            for name in names:
                host = record.host(name)
                if name in outcome.fetched and not (fleet_dir / name).exists():
                    unpack_run(outcome.fetched[name], fleet_dir / name)
                    host.run_dir = name
                if name in outcome.failed:
                    lines.append(f"nothing on {name} for fleet {record.fleet_id}: {outcome.failed[name]}")
                    host.error = outcome.failed[name]
                else:
                    lines.append(f"the run of fleet {record.fleet_id} on {name}, stopped first"
                                 f"{' (its run folder taken home)' if host.run_dir else ''}")
            return lines
    except (LayerbenchError, OSError, RuntimeError) as error:
        return [f"nothing on the hosts of fleet {record.fleet_id}: {error}; remove {where} by hand"]


def clean_fleets(results_dir: Path) -> list[str]:
    """Finish every fleet under results_dir whose runner is gone; one line per thing done."""
    lines = []
    for fleet_dir in list_fleets(results_dir):
        try:
            record = load_fleet(fleet_dir)
        except ResultsError:
            continue
        if not record.runner_gone(fleet_dir):
            continue
        if record.local_folder:  # first what the killed runner left running here (its ansible-playbook)
            lines += localdirs.end_processes(Path(record.local_folder))
        lines += _local_part(fleet_dir, record) + _remote_part(fleet_dir, record)
        for host in record.hosts:
            if host.status not in FINISHED:
                host.status, host.error = "interrupted", host.error or KILLED
                host.finished_at = now_iso()
        record.status, record.finished_at = "incomplete", now_iso()
        save_fleet(fleet_dir, record)
        lines.append(f"the 'running' of fleet {record.fleet_id}, whose runner was killed: its unfinished hosts "
                     "are marked interrupted")
    return lines + localdirs.clean()
