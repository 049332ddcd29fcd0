"""The typed parts of a stored run (format 6): every block of run.json whose keys are known is a
model here, its field names carrying their units. bench.results assembles them into RunRecord and
TrialRecord; fleet.json (bench.fleet.record) uses the same machine, split and runner parts.

Blocks whose keys are open stay mappings, on purpose: the engine's own accounting (`engine`),
start-up phases by name, roles by key, the tool versions of a machine, and each setup's own options
in the scenario. A setup's own facts are kept beside the typed ones (TrialFacts). A load trial's
network path has its blocks in bench.path_records.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer


class Part(BaseModel):
    """A block of a stored run. Unknown fields survive a round trip (a newer minor field)."""

    model_config = ConfigDict(extra="allow")

    def stored(self) -> dict:
        """The block as it was stored: only the fields it holds (JSON-ready)."""
        return self.model_dump(mode="json", exclude_unset=True)


# ---- the run ---------------------------------------------------------------------------------


class Machine(Part):
    """What a run ran on (bench.machine.describe); compare warns when two runs' machines differ."""

    hostname: str | None = None
    os: str | None = None
    kernel: str | None = None
    arch: str | None = None
    cpu_model: str | None = None
    cpus_logical: int | None = None
    cpus_physical: int | None = None
    cpu_mhz_max: float | None = None
    memory_bytes: int | None = None
    python: str | None = None
    python_executable: str | None = None
    kvm_device: bool | None = None
    versions: dict[str, str | None] = Field(default_factory=dict)  # tool -> version (open set of tools)

    def field(self, name: str):
        """One field by name (bench.machine.COMPARABLE_FIELDS names them); None when not recorded."""
        return getattr(self, name, None)


class RunnerHost(Part):
    """The machine whose process wrote a run or a fleet: its pid means something only there."""

    hostname: str | None = None
    boot_id: str | None = None


class Pinning(Part):
    """The CPUs the app side and the load generator were pinned to."""

    app_cpus: list[int] = Field(default_factory=list)
    load_cpus: list[int] = Field(default_factory=list)


class RoleRecord(Part):
    """A role a layer declared (bench.roles.Role's fields; absent ones were not stored by an older
    run, and Role's own defaults apply): how outputs name and colour its processes."""

    key: str | None = None
    label: str | None = None
    colour: str | None = None
    contains_app: bool | None = None  # the app runs inside this process (QEMU)
    remainder_label: str | None = None
    remainder_colour: str | None = None


class Split(Part):
    """A run whose load came from another host (bench run --load-from)."""

    load_host: str | None = None
    load_address: str | None = None
    listen_address: str | None = None
    load_machine: Machine | None = None


class Skipped(Part):
    """A setup (of an app) the run could not prepare, and why."""

    setup: str | None = None
    variant: str | None = None
    app: str | None = None
    reason: str | None = None


class QuietWait(Part):
    """`--wait-quiet`: how long a round waited for the other processes to leave the CPUs alone."""

    round: int | None = None
    waited_s: float | None = None
    others_cores: float | None = None
    quiet: bool | None = None


class RepeatOutcome(Part):
    """How many rounds ran and what stopped them (and the state of the verdicts then)."""

    mode: str | None = None  # fixed, auto, budget
    rounds: int | None = None
    cap: int | None = None
    budget_s: float | None = None
    elapsed_s: float | None = None
    stopped_by: str | None = None  # count, settled, target, budget, cap


# ---- a trial -----------------------------------------------------------------------------------


class MemoryBytes(Part):
    """Memory of the setup's own processes summed over its roles, in bytes; density adds per instance."""

    rss: float | None = None
    uss: float | None = None
    pss: float | None = None
    rss_per_instance: float | None = None
    uss_per_instance: float | None = None
    pss_per_instance: float | None = None
    available_drop: float | None = None  # the host's MemAvailable drop while the copies ran
    available_drop_per_instance: float | None = None


class CpuPerRequest(Part):
    """CPU of the setup's own processes per completed request, in µs."""

    user_us: float
    sys_us: float

    @property
    def total_us(self) -> float:
        return self.user_us + self.sys_us


class RoleSample(Part):
    """One role's processes over a trial's window (a role of the instance, or a fixed-cost daemon)."""

    cpu_user_s: float | None = None
    cpu_sys_s: float | None = None
    processes: int | None = None
    rss_bytes: float | None = None
    uss_bytes: float | None = None
    pss_bytes: float | None = None
    threads: float | None = None  # the mean over the window's samples


class CgroupLimits(Part):
    """The cgroup limits the app reads from inside its layer, as the files say them (text), where readable."""

    cpu_max: str | None = None  # cgroup v2
    memory_max: str | None = None
    cpuset: str | None = None
    cpu_cfs_quota_us: str | None = None  # cgroup v1 (Docker mounts the container's own subtree there)
    cpu_cfs_period_us: str | None = None
    memory_limit_in_bytes: str | None = None
    cpuset_v1: str | None = None


class InsideView(Part):
    """The app's own view from inside its layer over a trial (bench.app's /stats): who and where it
    runs, and the CPU it used and the requests it served during the measured window."""

    pid: int | None = None
    ppid: int | None = None
    uid: int | None = None
    kernel: str | None = None  # the kernel it runs on: the guest's in a VM
    hostname: str | None = None
    max_rss_bytes: int | None = None
    rss_bytes: int | None = None
    threads: int | None = None
    cgroup: CgroupLimits | None = None
    cpus_allowed: list[int] | None = None
    python: str | None = None  # the version of the interpreter it runs on
    cpu_user_s: float | None = None  # over the window: absent for a trial with no window (a cold start)
    cpu_sys_s: float | None = None
    requests_served: int | None = None  # of the workload's path, during the window

    @property
    def cpu_us_per_request(self) -> float | None:
        if not self.requests_served or self.cpu_user_s is None:
            return None
        return (self.cpu_user_s + (self.cpu_sys_s or 0.0)) / self.requests_served * 1e6


class TrialFacts(Part):
    """What a trial's setup said about itself: each setup its own facts (an image's size, a
    container's id, a VM's kernel), kept as it gave them and read as attributes (`facts.disk_mb`),
    and the few every reader knows, typed. Stored as said: a known fact nobody gave is not written."""

    fresh_start: bool | None = None  # the trial ran on a start of its own
    instances: int | None = None  # density: the copies side by side
    accel: str | None = None  # a VM's accelerator, as the run used it

    @model_serializer(mode="wrap")
    def _as_said(self, handler):
        return {key: value for key, value in handler(self).items()
                if value is not None or key not in type(self).model_fields}


class SamplerStats(Part):
    """The sampler's own cost over the trial."""

    hz: float | None = None
    ticks: int | None = None
    own_cpu_s: float | None = None
    wall_s: float | None = None
    own_cpu_fraction: float | None = None


class TrialFiles(Part):
    """A trial's raw files, relative to the run folder (bench.trial_files reads them, guarded)."""

    latency_ms: str | None = None  # .npy: one client latency per request
    app_ms: str | None = None  # .npy: the app's own time per request (Server-Timing)
    processes: str | None = None  # .csv: the sampler's rows per process
    host: str | None = None  # .csv: host-wide CPU and memory

    def named(self) -> dict[str, str]:
        """name -> relative path of every file the trial has."""
        return {name: path for name, path in self.model_dump().items() if isinstance(path, str)}


class Percentiles(Part):
    """Percentiles of one window's per-request times and its slowest request, in the unit its block
    names (`latency_ms`, `app_ms`); NaN when the window had none."""

    # The fast end, written for the app's own time only: on a shared host a neighbour slows whole
    # seconds of requests (by about 1.6x here), and the fastest 5% of a window are, nearly always,
    # requests it did not interrupt: what a code change moves and the neighbour does not (README,
    # "A regression gate in CI").
    p5: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None

    def named(self, name: str) -> float | None:
        """One percentile by its bench.stats.PERCENTILES name (p50 ... max)."""
        return getattr(self, name, None)


class GeneratorStats(Part):
    """The load generator's own use of its CPUs over the window: at 90% busy it, not the app, set the pace."""

    processes: int | None = None
    cpu_s: float | None = None
    wait_s: float | None = None
    busy_fraction: float | None = None
    runnable_fraction: float | None = None
    bound: bool | None = None


class LoadSummary(Part):
    """What a load trial's record keeps of its load (the raw latencies are files)."""

    generator: str | None = None  # builtin, wrk
    path: str | None = None
    mode: str | None = None  # closed, open
    connections: int | None = None
    rate_rps: float | None = None  # open loop only
    requests: int = 0  # completed with a 2xx inside the measured window
    sent: int | None = None
    errors: dict[str, int] = Field(default_factory=dict)  # error kind -> count (an open set of kinds)
    duration_s: float | None = None
    throughput_rps: float | None = None
    latency_ms: Percentiles = Field(default_factory=Percentiles)  # client side
    app_ms: Percentiles = Field(default_factory=Percentiles)  # the app's own (Server-Timing)
    latency_mean_ms: float | None = None
    app_mean_ms: float | None = None
    longest_gap_ms: float | None = None  # the longest stretch without a completed request
    longest_gap_end_s: float | None = None  # when it ended, seconds into the window
    notes: dict = Field(default_factory=dict)  # the generator's own remarks (an open set)
    generator_stats: GeneratorStats | None = None


class HostSample(Part):
    """The whole host over a trial's window: CPU seconds by state, and what the rest of the machine used."""

    cpu_user_s: float | None = None
    cpu_sys_s: float | None = None
    cpu_idle_s: float | None = None
    cpu_iowait_s: float | None = None
    cpu_steal_s: float | None = None
    busy_fraction: float | None = None  # of all CPUs
    mem_available_bytes: float | None = None  # median over the window
    foreign_cpu_cores: float | None = None  # CPU used by neither the setup nor the load generator
    mem_available_before_bytes: float | None = None  # density: before the copies started
    mem_available_after_bytes: float | None = None  # and after they stopped


class ProcessSample(Part):
    """One host process of a trial over its window."""

    pid: int | None = None
    role: str | None = None
    name: str | None = None
    cpu_user_s: float | None = None
    cpu_sys_s: float | None = None
    rss_bytes_max: float | None = None


class Speed(Part):
    """`calibrate: true`: the machine's speed on the app's CPUs, the geometric mean of a probe before
    and one after the trial (bench.metrics.speed)."""

    hashes_per_s: float | None = None
    cpus: list[int] = Field(default_factory=list)
    probe_s: float | None = None


# ---- the scenario, as the run stored it ------------------------------------------------------
# bench.scenario's models validate a file strictly and ask the setups about their options; these
# read a stored scenario back leniently (an older run's may not parse today, and reading results
# loads no setup). Their fields are the scenario's own keys, so a scenario file's words (duration,
# warmup: seconds; rate: requests per second) stay as the user wrote them. A field absent in an
# older run is None. tests/unit/test_results.py checks the fields against bench.scenario's.


class AppSpecRecord(Part):
    name: str | None = None
    image: str | None = None
    port: int | None = None
    path: str | None = None
    ready: str | None = None


class SetupSpecRecord(Part):
    setup: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # each setup's own Options: open keys, validated there


class WorkloadRecord(Part):
    name: str | None = None
    kind: str | None = None
    endpoint: str | None = None
    param: int | None = None
    mode: str | None = None
    connections: int | None = None
    rate: float | None = None  # requests per second, open loop only
    duration: float | None = None  # seconds measured
    warmup: float | None = None  # seconds discarded before measuring
    load: str | None = None
    instances: list[int] | None = None


class ScenarioRecord(Part):
    name: str | None = None
    description: str | None = None
    app: AppSpecRecord | None = None
    apps: list[AppSpecRecord] | None = None
    setups: list[SetupSpecRecord] | None = None
    workloads: list[WorkloadRecord] | None = None
    repeat: int | str | None = None  # a count, or "auto"
    repeat_target: float | None = None
    repeat_cap: int | None = None
    budget: float | None = None  # seconds
    min_effect: float | None = None
    trials_per_start: int | None = None
    remeasure_busy: bool | None = None
    wait_quiet: bool | None = None
    calibrate: bool | None = None
    order: str | None = None
    start: str | None = None
    pinning: str | Pinning | None = None  # "auto", or the CPUs asked for
    seed: int | None = None
    gate: dict[str, str] | None = None  # metric key -> threshold, as written
