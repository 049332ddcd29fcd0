"""What a run was, as outputs show it: its id, status, scenario, machine and settings.

Outputs read a run through bench.model only; this is the part of the stored record that is not
a figure (the figures are cells, overhead and costs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.records import Machine, Pinning, ScenarioRecord, Skipped, Split


@dataclass(frozen=True)
class RunInfo:
    """A run's identity and settings: enough to reproduce it, or to distrust a comparison."""

    run_id: str
    status: str  # complete, running, incomplete (a run whose runner was killed reads incomplete)
    stored_status: str  # as the run.json says (running for a killed run)
    created_at: str
    finished_at: str | None
    command_line: tuple[str, ...]
    seed: int
    scenario: ScenarioRecord  # the scenario as the run stored it (bench.scenario's fields)
    machine: Machine
    pinning: Pinning | None  # None: not pinned
    split: Split | None  # None: the load ran on this machine
    skipped: tuple[Skipped, ...] = field(default=())
    setups_ran: tuple[str, ...] = ()  # the setups with a trial recorded, in the order they first ran
    trials_recorded: int = 0  # every trial recorded, failed and set aside ones included
    trials_ok: int = 0  # the trials measured and counted

    @property
    def scenario_name(self) -> str | None:
        return self.scenario.name

    @property
    def description(self) -> str:
        return self.scenario.description or ""

    def machine_field(self, name: str):
        """One field of the machine block (hostname, kernel, kvm_device, ...), None when not recorded."""
        return self.machine.field(name)
