"""A cell's grouped figures as outputs read them: typed, the unit in the name of the block
(`Cell.latency_ms`, `Cell.memory_mb` in MiB, bench.vocabulary.MIB_BYTES), instead of dicts indexed
by key strings. `as_dict()` gives the JSON summary's shape (its keys are the fields' names)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Latencies:
    """Client latency in ms, medians over the cell's trials of each trial's percentile; `max`: the
    slowest request of any trial (a stall shows there)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None

    def named(self, name: str) -> float | None:
        """The figure of a percentile's name (bench.stats.PERCENTILES, or "max")."""
        return getattr(self, name)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CpuSplit:
    """CPU per request in µs over every process the setup needs: user and system time."""

    user: float | None = None
    sys: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Memory:
    """Memory in MiB of every process the setup needs, summed: PSS (adds up across processes, a shared
    page split among those that map it), USS (private pages), RSS (the upper bound)."""

    pss: float | None = None
    uss: float | None = None
    rss: float | None = None

    def as_dict(self, order: tuple[str, ...] = ("rss", "uss", "pss")) -> dict:
        """The summary's keys in the order it has always written them (per-instance costs: pss first)."""
        return {part: getattr(self, part) for part in order}


@dataclass(frozen=True)
class PerInstanceMemory:
    """Density, in MiB per instance with N copies side by side: USS (what one more instance costs),
    PSS (its fair share), RSS (the upper bound) and the host's MemAvailable drop (the cross-check)."""

    uss: float | None = None
    pss: float | None = None
    rss: float | None = None
    available_drop: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InsideFigures:
    """The app's own view from inside its layer (its /stats), medians over the trials that had one;
    user, kernel and parent pid from the last of them."""

    cpu_us_per_request: float | None = None  # CPU the app counted itself, per request it served
    rss_mb: float | None = None  # MiB, the app's resident memory as it sees it
    uid: int | None = None
    kernel: str | None = None  # the kernel the app runs on: the guest's in a VM
    ppid: int | None = None
    requests_served: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProcessTick:
    """One host process at one sampler tick (a row of a trial's processes.csv): the time on the
    trial's clock, who it is, its CPU counters so far and its resident memory."""

    t: float  # s, the sampler's clock (the trial's `window_t` uses the same)
    pid: str
    role: str
    cpu_user_s: float  # cumulative, since the process started
    cpu_sys_s: float
    rss_bytes: float

    @classmethod
    def of_row(cls, row: dict[str, str]) -> "ProcessTick | None":
        """A CSV row as a tick; None when a figure is missing or not a number."""
        try:
            return cls(float(row["t"]), row["pid"], row.get("role") or "", float(row["cpu_user_s"]),
                       float(row["cpu_sys_s"]), float(row["rss_bytes"]))
        except (KeyError, TypeError, ValueError):
            return None
