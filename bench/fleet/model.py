"""A stored fleet as every output sees it: its hosts, their runs (bench.model.Run), the machines
side by side, ONE comparison of the runs across hosts (bench.compare, ratios to the first host
that finished), and the caveats: hosts that failed, machines that differ."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from bench.compare import Comparison, compare
from bench.errors import ResultsError
from bench.fleet.record import FleetRecord, HostOutcome, load_fleet, run_folders
from bench.model import Run
from bench.vocabulary import Caveat, fmt

MACHINE_ROWS = ("status", "hostname", "CPU", "logical CPUs", "memory", "kernel", "OS", "Python", "/dev/kvm",
                "pinning (app | load)", "layerbench", "trials ok")


class Fleet:
    """fleet.json and the run folders that came home."""

    def __init__(self, record: FleetRecord, fleet_dir: Path):
        self._record = record
        self.fleet_dir = Path(fleet_dir)

    @classmethod
    def load(cls, fleet_dir: Path) -> "Fleet":
        return cls(load_fleet(fleet_dir), Path(fleet_dir))

    @property
    def fleet_id(self) -> str:
        return self._record.fleet_id

    @property
    def status(self) -> str:
        return self._record.status

    @property
    def scenario_name(self) -> str | None:
        return self._record.scenario.name

    @property
    def description(self) -> str:
        return self._record.scenario.description or ""

    @property
    def created_at(self) -> str:
        return self._record.created_at

    @property
    def finished_at(self) -> str | None:
        return self._record.finished_at

    @property
    def command_line(self) -> list[str]:
        return list(self._record.command_line)

    @property
    def split(self) -> dict:
        """load_host, load_address, listen_address, load_machine; empty when the load ran on each host."""
        return self._record.split.stored() if self._record.split else {}

    def stored(self) -> dict:
        """fleet.json as plain data (`bench show FLEET --format json`)."""
        return self._record.model_dump(mode="json")

    @property
    def hosts(self) -> list[HostOutcome]:
        return self._record.targets

    @cached_property
    def _loaded(self) -> tuple[dict[str, Run], dict[str, str]]:
        runs, unreadable = {}, {}
        for name, folder in run_folders(self.fleet_dir, self._record):
            try:
                runs[name] = Run.load(folder)
            except ResultsError as error:
                unreadable[name] = str(error)
        return runs, unreadable

    @property
    def runs(self) -> dict[str, Run]:
        """host name -> its run, for every host whose run folder came home and reads."""
        return self._loaded[0]

    @cached_property
    def comparison(self) -> Comparison | None:
        """The runs compared cell by cell, ratios to the first host's run; None below two runs."""
        if len(self.runs) < 2:
            return None
        return compare(list(self.runs.values()), names=list(self.runs))

    def machines(self) -> list[tuple[str, list[str]]]:
        """(what, one value per host): the machines side by side, failed hosts included."""
        columns = [_machine_column(outcome, self.runs.get(outcome.name)) for outcome in self.hosts]
        return [(row, [column.get(row, "–") for column in columns]) for row in MACHINE_ROWS]

    def caveats(self) -> list[Caveat]:
        """Hosts that did not finish, the split (if any), then what the comparison warns about."""
        found = []
        if self._record.runner_gone(self.fleet_dir):
            found.append(Caveat("host", "", "this fleet says it is running, but its runner is gone (killed): "
                                            "`bench clean` stops what it left on the hosts and marks it interrupted"))
        for outcome in self.hosts:
            if outcome.status != "complete":
                found.append(Caveat("host", outcome.name, f"host {outcome.name} ({outcome.target}) is {outcome.status}"
                                    f"{': ' + outcome.error if outcome.error else ''}"
                                    f"{'' if outcome.name in self.runs else '; no results from it'}"))
        for name, error in self._loaded[1].items():
            found.append(Caveat("host", name, f"host {name}: its run folder is unreadable: {error}"))
        split = self._record.split
        if split:
            found.append(Caveat("split", split.load_host or "", f"split run: the load came from "
                                f"{split.load_host} ({split.load_address}); the app listened on "
                                f"{split.listen_address}, not on loopback"))
        if self.comparison is not None:
            found += self.comparison.caveats
        return found


def _dash(value) -> str:
    return "–" if value is None else str(value)


def _machine_column(outcome: HostOutcome, run: Run | None) -> dict[str, str]:
    column = {"status": outcome.status + (f" ({outcome.error})" if outcome.error else "")}
    if run is None:
        return column
    machine, info = run.info.machine, run.info
    memory = machine.memory_bytes
    pinning = info.pinning
    column.update({
        "hostname": _dash(machine.hostname),
        "CPU": _dash(machine.cpu_model),
        "logical CPUs": _dash(machine.cpus_logical),
        "memory": fmt(memory / 1024**3, 1, "GiB") if isinstance(memory, (int, float)) else "–",
        "kernel": _dash(machine.kernel),
        "OS": _dash(machine.os),
        "Python": _dash(machine.python),
        "/dev/kvm": "yes" if machine.kvm_device else "no",
        "pinning (app | load)": f"{pinning.app_cpus} | {pinning.load_cpus}" if pinning else "– | –",
        "layerbench": _dash(machine.versions.get("layerbench")),
        "trials ok": f"{info.trials_ok} of {info.trials_recorded}",
    })
    return column
