"""A role's figures as outputs read them: typed, with the unit in each name (memory in MiB,
bench.vocabulary.MIB_BYTES), instead of dicts indexed by key strings."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.vocabulary import finite


@dataclass(frozen=True)
class RoleFigures:
    """One role of a cell (app, runtime, proxy, hypervisor, ...): medians over the cell's trials."""

    cpu_user_us_per_request: float | None = None
    cpu_sys_us_per_request: float | None = None
    rss_mb: float | None = None  # MiB
    uss_mb: float | None = None  # MiB
    pss_mb: float | None = None  # MiB: adds up across roles
    processes: float | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        """User + system CPU per request (µs); None without a user figure."""
        if not finite(self.cpu_user_us_per_request):
            return None
        return self.cpu_user_us_per_request + (self.cpu_sys_us_per_request or 0)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FixedFigures:
    """A fixed-cost role (an engine daemon) or their total: medians over the trials that sampled them."""

    pss_mb: float | None = None  # MiB
    uss_mb: float | None = None  # MiB
    rss_mb: float | None = None  # MiB
    cpu_cores: float | None = None  # average over the trial's window
    processes: float | None = None  # None for a total

    def as_dict(self) -> dict:
        figures = asdict(self)
        return figures if self.processes is not None else {k: v for k, v in figures.items() if k != "processes"}
