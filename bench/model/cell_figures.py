"""A cell's grouped figures as outputs read them: typed, the unit in the name of the block
(`Cell.memory_mb` in MiB, bench.vocabulary.MIB_BYTES), instead of dicts indexed by key strings.
`as_dict()` gives the JSON summary's shape (its keys are the fields' names). A cell's latency
percentiles are the stored record's own type (bench.records.Percentiles), medians over its trials."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class _Block:
    """A block of figures whose JSON summary is its fields, in their order."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CpuSplit(_Block):
    """CPU per request in µs over every process the setup needs: user and system time."""

    user: float | None = None
    sys: float | None = None


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
class PerInstanceMemory(_Block):
    """Density, in MiB per instance with N copies side by side: USS (what one more instance costs),
    PSS (its fair share), RSS (the upper bound) and the host's MemAvailable drop (the cross-check)."""

    uss: float | None = None
    pss: float | None = None
    rss: float | None = None
    available_drop: float | None = None


@dataclass(frozen=True)
class InsideFigures(_Block):
    """The app's own view from inside its layer (its /stats), medians over the trials that had one;
    user, kernel and parent pid from the last of them."""

    cpu_us_per_request: float | None = None  # CPU the app counted itself, per request it served
    rss_mb: float | None = None  # MiB, the app's resident memory as it sees it
    uid: int | None = None
    kernel: str | None = None  # the kernel the app runs on: the guest's in a VM
    ppid: int | None = None
    requests_served: float | None = None


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
