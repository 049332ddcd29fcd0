"""The journey of one request through each layer, from the stored trials' `network_path` blocks.

Per cell: the hops in order (each interface with its packets and bytes per request, medians over
repeats; the processes that forward; the app's own interface seen from inside). Per layer under
one workload: a waterfall of segments whose widths add up to the measured mean latency:
- each forwarding process's CPU per request (docker-proxy; QEMU less what the app inside it used;
  gVisor's sentry), in path order;
- the app process's CPU per request outside its own handler (HTTP parsing, system calls, the
  kernel's network stack in its context);
- the app's own time, from its Server-Timing header;
- what is left, not attributed: waiting for a CPU, wake-ups, queueing behind the other
  connections, the client's own sending and receiving. Drawn as its own segment and said so.
CPU time and latency only add up like this when requests do not overlap: the workload with the
fewest connections is the one to read (`journey_workload`). Where the CPU of a request exceeds its
latency (work overlapped, or fell between requests), the excess is `overlap_us`, not hidden.

Reads only stored results: cells (bench.model.cell) and the roles the run declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.model.cell import Cell, LayerKey
from bench.model.figures import median_of
from bench.results import TrialRecord
from bench.roles import APP
from bench.vocabulary import finite

MIN_SEGMENT_US = 0.5  # a process's CPU per request below this is noise of the sampler's ticks
BACKGROUND_FLAG = 0.05  # a hop whose quiet-baseline traffic explains more than this share is flagged


@dataclass(frozen=True)
class Hop:
    """One step of the path, as medians over a cell's repeats."""

    step: str  # interface, process or inside
    name: str  # lo, docker0, veth (its name changes with every start), eth0; or a role key
    kind: str = ""  # loopback, bridge, veth, tap; inside: "inside"
    netns: str = ""  # host, engine (a private engine's own namespace), or "" inside the layer
    packets_per_request: float | None = None
    bytes_per_request: float | None = None
    background_share: float | None = None  # worst repeat: share of its packets the quiet baseline explains
    note: str = ""
    traced_packets_per_request: float | None = None  # the app's own packets only (eBPF), when traced

    @property
    def interface(self) -> bool:
        return self.step in ("interface", "inside")

    @property
    def flagged(self) -> bool:
        return finite(self.background_share) and self.background_share > BACKGROUND_FLAG


@dataclass(frozen=True)
class Segment:
    """A stretch of one request's latency, in µs, and who spent it."""

    label: str
    us: float
    kind: str  # process, app, in_app, unattributed
    role: str | None = None


@dataclass(frozen=True)
class Journey:
    """One layer's request under one workload: hops in order, and the waterfall of its latency."""

    key: LayerKey
    workload: str
    connections: int | None
    latency_us: float
    latency_source: str  # "mean latency", or "connections / throughput" for a run that stored no mean
    segments: list[Segment]
    hops: list[Hop]
    overlap_us: float = 0.0  # CPU per request beyond the latency (not drawn: it did not add to the wait)
    absent_roles: list[str] = field(default_factory=list)  # declared roles with no process in these trials
    dnat_packets: float | None = None  # median over repeats, over the trial (new connections rewritten)
    conntrack_added: float | None = None
    reached_at: str | None = None

    @property
    def attributed_us(self) -> float:
        return sum(segment.us for segment in self.segments if segment.kind != "unattributed")


def _paths(cell: Cell) -> list[TrialRecord]:
    return [trial for trial in cell.ok if trial.network_path.path]


def hops(cell: Cell) -> list[Hop]:
    """The cell's path, step by step (the first repeat's shape), with medians over its repeats."""
    trials = _paths(cell)
    if not trials:
        return []
    shape = trials[0].network_path.path
    found = []
    for index, step in enumerate(shape):
        same = [trial.network_path.path[index] for trial in trials
                if len(trial.network_path.path) > index and trial.network_path.path[index].step == step.step]
        kind = step.step or ""
        if kind == "process":
            found.append(Hop("process", step.role or ""))
            continue
        shares = [entry.background_share for entry in same if finite(entry.background_share)]
        missing = next((entry.missing for entry in same if entry.missing), "")
        found.append(Hop(kind, step.name or "", "inside" if kind == "inside" else step.kind or "",
                         step.netns or "", median_of(entry.packets_per_request for entry in same),
                         median_of(entry.bytes_per_request for entry in same), max(shares, default=None),
                         step.note or missing,
                         median_of(entry.traced_packets_per_request for entry in same)))
    return found


def _latency_us(cell: Cell) -> tuple[float | None, str]:
    means = [trial.load.latency_mean_ms for trial in cell.ok if trial.load]
    if any(finite(value) for value in means):
        return median_of(value * 1e3 for value in means if finite(value)), "mean latency"
    connections = _connections(cell)
    throughput = cell.median("throughput_rps")
    if connections and throughput:  # closed loop: each connection has one request in flight
        return connections / throughput * 1e6, "connections / throughput"
    return None, ""


def _connections(cell: Cell) -> int | None:
    return next((trial.load.connections for trial in cell.ok if trial.load and trial.load.connections), None)


def _in_app_us(cell: Cell) -> float:
    means = [trial.load.app_mean_ms for trial in cell.ok if trial.load]
    value = median_of(value for value in means if finite(value))
    if value is None:
        value = cell.app_ms_p50
    return value * 1e3 if finite(value) else 0.0


def _cpu_us(cell: Cell, role: str) -> float:
    figures = cell.roles.get(role)
    if figures is None:
        return 0.0
    return (figures.cpu_user_us_per_request or 0.0) + (figures.cpu_sys_us_per_request or 0.0)


def _inside_cpu_us(cell: Cell, contains_app: set[str]) -> tuple[float, str]:
    """The app's CPU per request as it counted it inside its layer, and a note. Inside a VM it can
    exceed the host CPU of the process it runs in (make demo under TCG: 2.77 ms against QEMU's 2.46 ms),
    likely because the guest's clock also runs while its vCPU thread waits for the host's CPU (not
    verified). The app cannot have cost the host more than QEMU did, so its share is capped there and
    the note says by how much the guest's count was over."""
    inside = cell.inside.cpu_us_per_request if cell.inside else None
    if not finite(inside):
        return 0.0, ""
    host = [_cpu_us(cell, role) for role in cell.roles if role in contains_app]
    if host and inside > sum(host):
        return sum(host), f" (nothing left: the guest counted {inside:,.0f} µs for the app, more than its {sum(host):,.0f})"
    return inside, ""


def journey(cell: Cell, role_labels: dict[str, str], declared_roles: list[str],
            contains_app: set[str]) -> Journey | None:
    """The waterfall of one cell (None when it has no latency or no path). `role_labels`: how each
    role is named; `declared_roles`: the roles its layer declared (one with no process in these
    trials is listed as absent: docker-proxy without a proxy); `contains_app`: roles the app runs
    inside (QEMU), whose CPU is counted less what the app used inside them."""
    latency_us, source = _latency_us(cell)
    path = hops(cell)
    if latency_us is None or not path:
        return None
    in_app = _in_app_us(cell)
    inside_cpu, beyond = _inside_cpu_us(cell, contains_app)
    segments: list[Segment] = []
    forwarders = [hop.name for hop in path if hop.step == "process"]
    others = [role for role in cell.roles if role not in forwarders and role != APP.key]
    for role in forwarders + others:
        cpu, name = _cpu_us(cell, role), role_labels.get(role, role)
        if role in contains_app:  # QEMU: the app's own CPU (seen from inside) is drawn as the app's
            cpu, name = max(0.0, cpu - inside_cpu), f"{name.split(' (')[0]}, less the app inside it" + beyond
        if cpu >= MIN_SEGMENT_US or role in forwarders:
            segments.append(Segment(name, cpu, "process", role))
    app_cpu = _cpu_us(cell, APP.key) if APP.key in cell.roles else inside_cpu
    # Inside a guest, the app's CPU is the guest's count: its code, its system calls and the guest
    # kernel's network stack run for it, all emulated under TCG.
    counted = " (at most the host CPU of the process it runs in)" if beyond else " (as the guest counts it)"
    app_label = "app process, outside its handler" + ("" if APP.key in cell.roles else counted)
    segments.append(Segment(app_label, max(0.0, app_cpu - in_app), "app", APP.key))
    segments.append(Segment("in the app (Server-Timing)", in_app, "in_app", APP.key))
    attributed = sum(segment.us for segment in segments)
    segments.append(Segment("not attributed: waiting, wake-ups, queueing, the client",
                            max(0.0, latency_us - attributed), "unattributed"))
    absent = [role for role in declared_roles if role != APP.key and role not in cell.roles]
    dnat = median_of(trial.network_path.dnat.packets for trial in _paths(cell) if trial.network_path.dnat)
    conntrack = median_of(trial.network_path.conntrack.entries_added for trial in _paths(cell)
                          if trial.network_path.conntrack)
    reached = next((address for trial in _paths(cell) if (address := trial.network_path.reached_at)), None)
    return Journey(cell.layer_key, cell.workload, _connections(cell), latency_us, source, segments, path,
                   max(0.0, attributed - latency_us), absent, dnat, conntrack, reached)


def journey_workload(cells: list[Cell]) -> str | None:
    """The load workload whose requests overlap least: fewest connections among those with a
    measured path (the first such in the run's order on a tie)."""
    best: tuple[int, int] | None = None
    chosen = None
    for index, cell in enumerate(cells):
        if not _paths(cell):
            continue
        rank = (_connections(cell) or 10**6, index)
        if best is None or rank < best:
            best, chosen = rank, cell.workload
    return chosen


def journeys(run, workload: str | None = None) -> list[Journey]:
    """Every layer's journey under `workload` (default: `journey_workload`), in the run's layer
    order; `run` is a bench.model.Run."""
    workload = workload or journey_workload([cell for cell in run.cells if cell.has_load])
    if workload is None:
        return []
    labels = {key: role.label for key, role in run.roles.items()}
    contains_app = {key for key, role in run.roles.items() if role.contains_app}
    found = []
    for cell in run.cells:
        if cell.workload != workload:
            continue
        layer = run.layer(cell.setup, cell.variant, cell.app)
        declared = [role for role in layer.roles if role not in layer.fixed_roles]  # per instance, not the engine
        made = journey(cell, labels, declared, contains_app)
        if made is not None:
            found.append(made)
    return found
