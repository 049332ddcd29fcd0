"""The network path of a request, hop by hop: what a started setup declares its requests cross,
and what each hop carried over a trial's measured window.

A setup attaches a `NetworkPath` to its instance: the steps a request takes from the load
generator to the app, in order. A step is an interface on the host side (lo, a bridge, a
container's veth; counted by the kernel), a process that forwards the request (docker-proxy,
QEMU, gVisor's sentry: their CPU is in the trial's roles), or the app's own interface seen from
inside its layer (its /stats). Setups that declare nothing get the loopback path of a process on
the host's network.

`PathProbe` wraps a load trial: a quiet baseline window first (what the interfaces carry with no
load: other traffic on the machine inflates every counter, and this says by how much), the
connection-tracking count and the DNAT rule's count around the trial, and the interface counters
on every sampler tick, interpolated at the measured window's bounds like the CPU counters. What it
returns is the trial record's `network_path` block (its fields are documented in `summary`).

Counting: a packet crossing an ordinary interface is counted once, as received or as sent, so the
packets that cross it are rx + tx; on lo every packet is sent and received by the same device, so
its crossings are tx alone (rx counts them again).

With `trace` (bench.metrics.hoptrace: eBPF, where it runs), each interface also gets the packets of
the app's own connections alone over the same window (`traced_packets_per_request`): a cross-check
that other traffic did not inflate the counters.
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from bench.metrics.netcounters import (
    COUNTER_NAMES,
    Counters,
    SysfsFiles,
    conntrack_entries,
    dnat_packets,
    read_net_dev,
    read_sysfs,
)

QUIET_S = 0.5  # the quiet baseline window before each load trial, at most ...
QUIET_SHARE = 0.25  # ... and a quarter of the trial's measured window (a 1-s trial waits 0.25 s)
QUIET_FROM_S = 1.0  # trials measured for less (smoke runs, tests) skip it: their background stays unknown
HOST, ENGINE = "host", "engine"  # the namespaces a hop can be read in (ENGINE: a private engine's own)


def quiet_for(duration_s: float) -> float:
    """The quiet baseline's length before a trial measured for `duration_s` (0: none). Background
    traffic is a few packets a second against thousands under load: a quarter of the window
    resolves a share of it far below the 5% a hop is flagged at, and a short trial then does not
    spend a third of its time waiting."""
    return 0.0 if duration_s < QUIET_FROM_S else min(QUIET_S, QUIET_SHARE * duration_s)


@dataclass(frozen=True)
class Interface:
    """An interface a request crosses, where to read it, and what a reader is told it is."""

    name: str  # the device's name in its namespace: lo, docker0, veth1a2b3c4
    kind: str  # loopback, bridge, veth (a container's end on the host side), tap
    netns: str = HOST  # HOST: read from sysfs; ENGINE: through `pid`'s /proc/<pid>/net/dev
    pid: int | None = None  # a process living in that namespace (netns ENGINE)

    @property
    def key(self) -> str:
        return f"{self.netns}:{self.name}"

    @property
    def loopback(self) -> bool:
        return self.kind == "loopback"

    def describe(self) -> dict:
        return {"step": "interface", "name": self.name, "kind": self.kind, "netns": self.netns}


@dataclass(frozen=True)
class Forwarder:
    """A process on the path that handles every request (its role key: proxy, hypervisor, sandbox)."""

    role: str

    def describe(self) -> dict:
        return {"step": "process", "role": self.role}


@dataclass(frozen=True)
class Inside:
    """The app's own interface, from inside its layer (the app's /stats: its /proc/net/dev)."""

    name: str  # eth0 in a container or a guest; lo for a process on the host's network
    note: str = ""  # what that view means here (the host's own counters, gVisor's netstack, a guest)

    def describe(self) -> dict:
        return {"step": "inside", "name": self.name, "note": self.note}


Step = Union[Interface, Forwarder, Inside]


@dataclass
class NetworkPath:
    """The steps a request takes from the load generator to the app, in order; the reply comes back
    the same way. `dnat_port`: a published port whose DNAT rule to read (in the client's namespace, in
    the nat table's chain `dnat_chain`, the engine's);
    `reached_at`: set when the load goes to the app's own address (a container IP), not to 127.0.0.1."""

    steps: tuple[Step, ...]
    dnat_port: int | None = None
    dnat_chain: str = ""
    reached_at: str | None = None
    facts: dict = field(default_factory=dict)  # what the record should say about it (bridge, subnet, engine)
    # With reached_at: checks again, before every trial, that the address may still be loaded (raises if not).
    check_reach: Callable[[], object] | None = None
    # The app's endpoints as each hop sees them ((port, IPv4 or None for any)), for eBPF tracing;
    # empty: the instance's port on 127.0.0.1.
    endpoints: list[tuple[int, str | None]] = field(default_factory=list)

    @property
    def interfaces(self) -> list[Interface]:
        return [step for step in self.steps if isinstance(step, Interface)]

    @property
    def inside(self) -> Inside | None:
        return next((step for step in self.steps if isinstance(step, Inside)), None)

    def read(self, sysfs: SysfsFiles | None = None) -> dict[str, dict[str, int] | None]:
        """Every interface's counters now, by key (None for one that is gone); cheap: sysfs files (kept
        open in `sysfs` when given) and at most one /proc/<pid>/net/dev per namespace."""
        by_pid: dict[int, dict[str, Counters]] = {}
        found: dict[str, dict[str, int] | None] = {}
        for interface in self.interfaces:
            if interface.netns == HOST:
                counters = sysfs.read(interface.name) if sysfs is not None else read_sysfs(interface.name)
            else:
                if interface.pid not in by_pid:
                    by_pid[interface.pid] = read_net_dev(interface.pid) if interface.pid else {}
                counters = by_pid[interface.pid].get(interface.name)
            found[interface.key] = counters.as_dict() if counters is not None else None
        return found


ON_HOST_NOTE = ("the app runs in the host's network namespace: its lo is the host's lo, so the inside view counts "
                "the same packets, and everything else on the machine that uses lo")


def loopback_path() -> NetworkPath:
    """The path of an app on the host's network answering on 127.0.0.1: lo, and nothing else."""
    return NetworkPath(steps=(Interface("lo", "loopback"), Inside("lo", ON_HOST_NOTE)))


def _delta_at(rows: list[tuple[float, dict]], key: str, window: tuple[float, float]) -> dict[str, float] | None:
    """The counters of `key` over `window`, each interpolated at the window's bounds."""
    points = [(t, values[key]) for t, values in rows if values.get(key) is not None]
    if len(points) < 2:
        return None
    times = np.array([t for t, _ in points])
    delta = {}
    for name in COUNTER_NAMES:
        values = np.array([counters[name] for _, counters in points], dtype=float)
        delta[name] = float(np.interp(window[1], times, values) - np.interp(window[0], times, values))
    return delta


def _span(rows: list[tuple[float, dict]], key: str) -> tuple[dict[str, int] | None, float]:
    """The counters of `key` from the first sample to the last (whole trial), and its seconds."""
    points = [(t, values[key]) for t, values in rows if values.get(key) is not None]
    if len(points) < 2:
        return None, 0.0
    (first_t, first), (last_t, last) = points[0], points[-1]
    return {name: last[name] - first[name] for name in COUNTER_NAMES}, last_t - first_t


def crossings(counters: dict[str, float], loopback: bool) -> tuple[float, float]:
    """(packets, bytes) that crossed an interface, from its rx/tx deltas (see the module's words)."""
    if loopback:
        return counters["tx_packets"], counters["tx_bytes"]
    return counters["rx_packets"] + counters["tx_packets"], counters["rx_bytes"] + counters["tx_bytes"]


def _per(value: float | None, count: float | None) -> float | None:
    return value / count if value is not None and count else None


class PathProbe:
    """Wraps one load trial: `quiet()` and `before()` first, `read` on every sampler tick, `after()`,
    then `summary()`. Never raises for a counter it cannot read: the figure is None, with the reason."""

    def __init__(self, path: NetworkPath, quiet_s: float = QUIET_S, sleep: Callable[[float], None] = time.sleep,
                 trace: bool = False, port: int | None = None):
        self.path = path
        self.quiet_s = quiet_s
        self._sleep = sleep
        self.quiet_rates: dict[str, dict[str, float] | None] = {}
        self.conntrack: dict[str, int | None] = {}
        self.dnat: dict = {}
        self.trace_wanted = trace
        self.endpoints = path.endpoints or ([(port, None)] if port else [])
        self.tracer = None  # a bench.metrics.hoptrace.HopTrace, while and after tracing
        self.trace_note: str | None = None
        self._sysfs = SysfsFiles()  # closed by after(), or when the probe is dropped without it
        weakref.finalize(self, self._sysfs.close)

    def tracing(self):
        """A context for the sampled window: eBPF counts the app's own packets per hop, or nothing."""
        if not self.trace_wanted:
            return contextlib.nullcontext()
        from bench.metrics import hoptrace

        self.trace_note = hoptrace.unavailable_reason()
        if self.trace_note is not None or not self.endpoints:
            self.trace_note = self.trace_note or "no endpoint to trace"
            return contextlib.nullcontext()
        self.tracer = hoptrace.HopTrace(self.endpoints)
        return self.tracer

    def read(self) -> dict[str, dict[str, int] | None]:
        return self.path.read(self._sysfs)

    def quiet(self) -> None:
        """The quiet baseline: what every hop carries in `quiet_s` with the setup up and no load."""
        if self.quiet_s <= 0:
            return
        first, began = self.read(), time.monotonic()
        self._sleep(self.quiet_s)
        last, seconds = self.read(), time.monotonic() - began
        for key, counters in last.items():
            before = first.get(key)
            self.quiet_rates[key] = None if counters is None or before is None or seconds <= 0 else \
                {name: (counters[name] - before[name]) / seconds for name in COUNTER_NAMES}

    def before(self) -> None:
        self.conntrack["before"] = conntrack_entries()
        if self.path.dnat_port is not None:
            self.dnat["before"], self.dnat["read"] = dnat_packets(self.path.dnat_port, self.path.dnat_chain)

    def after(self) -> None:
        self._sysfs.close()
        self.conntrack["after"] = conntrack_entries()
        if self.path.dnat_port is not None:
            self.dnat["after"], self.dnat["read"] = dnat_packets(self.path.dnat_port, self.path.dnat_chain)

    def summary(self, rows: list[tuple[float, dict]], window: tuple[float, float], requests: int,
                inside_before: dict, inside_after: dict, inside_requests: int | None) -> dict:
        """The trial record's `network_path` block.

        path: the steps in order; each interface step carries `window` (rx/tx packets and bytes over
            the measured window), `packets_per_request` and `bytes_per_request` (crossings over the
            window / requests completed in it), `span` and `span_s` (first to last sampler read: the
            whole trial, for cross-checks against `ip -s link`), `quiet_packets_per_s` (the quiet
            baseline's rate) and `background_share` (the share of the window's packets that rate
            explains: other traffic on the machine); the inside step carries the app's own counters
            between its /stats reads before and after the trial and `requests_served` in that span.
        conntrack: entries in the client's namespace before and after the trial, and `entries_added`.
        dnat: the published port's DNAT rule: `packets` it matched over the trial (new connections;
            None when it cannot be read, with `read` saying why).
        """
        window_s = window[1] - window[0]
        steps = []
        for step in self.path.steps:
            described = step.describe()
            if isinstance(step, Interface):
                described.update(self._interface_figures(step, rows, window, window_s, requests))
            elif isinstance(step, Inside):
                described.update(_inside_figures(step, inside_before, inside_after, inside_requests))
            steps.append(described)
        before, after = self.conntrack.get("before"), self.conntrack.get("after")
        block = {
            "window_s": window_s, "requests": requests, "quiet_s": self.quiet_s, "path": steps,
            "conntrack": {"entries_before": before, "entries_after": after,
                          "entries_added": after - before if before is not None and after is not None else None},
            **({"reached_at": self.path.reached_at} if self.path.reached_at else {}),
            **self._traced_block(),
            **({"facts": self.path.facts} if self.path.facts else {}),
        }
        if self.path.dnat_port is not None:
            first, last = self.dnat.get("before"), self.dnat.get("after")
            block["dnat"] = {"port": self.path.dnat_port, "read": self.dnat.get("read"),
                             "packets": last - first if first is not None and last is not None else None}
        return block

    def _traced_block(self) -> dict:
        if not self.trace_wanted:
            return {}
        error = self.trace_note or (self.tracer.error if self.tracer is not None else "not traced")
        return {"traced": {"by": "bpftrace", "endpoints": [list(endpoint) for endpoint in self.endpoints],
                           **({"unavailable": error} if error else {})}}

    def _traced_figure(self, interface: Interface, window, requests: int) -> float | None:
        """The app's own packets that crossed `interface` in the window, per request (eBPF)."""
        if self.tracer is None or not self.tracer.rows:
            return None
        key = (_netns_inode(interface), interface.name)
        rows = [(t, {"k": {**counts.get(key, {"rx_packets": 0, "tx_packets": 0}), "rx_bytes": 0, "tx_bytes": 0}})
                for t, counts in self.tracer.rows]
        delta = _delta_at(rows, "k", window)
        return _per(crossings(delta, interface.loopback)[0], requests) if delta else None

    def _interface_figures(self, interface: Interface, rows, window, window_s: float, requests: int) -> dict:
        delta = _delta_at(rows, interface.key, window)
        span, span_s = _span(rows, interface.key)
        quiet = self.quiet_rates.get(interface.key)
        figures: dict = {"window": delta, "span": span, "span_s": span_s,
                         "quiet_packets_per_s": crossings(quiet, interface.loopback)[0] if quiet else None}
        if delta is None:
            figures["missing"] = "its counters could not be read during the window"
            return figures
        packets, size = crossings(delta, interface.loopback)
        figures["packets_per_request"] = _per(packets, requests)
        figures["bytes_per_request"] = _per(size, requests)
        figures["background_share"] = _per(figures["quiet_packets_per_s"] * window_s, packets) \
            if figures["quiet_packets_per_s"] is not None and packets else None
        if self.tracer is not None:
            figures["traced_packets_per_request"] = self._traced_figure(interface, window, requests)
        return figures


def _netns_inode(interface: Interface) -> int | None:
    """The inode of the interface's namespace: a private engine's through its process, the host's as
    this thread sees it (the probe never runs in another namespace while host hops are read)."""
    path = f"/proc/{interface.pid}/ns/net" if interface.netns == ENGINE else "/proc/thread-self/ns/net"
    with contextlib.suppress(OSError):
        return os.stat(path).st_ino
    return None


def _inside_figures(step: Inside, before: dict, after: dict, served: int | None) -> dict:
    """The app's own counters of its interface between its /stats reads, per request it served
    there (`served`: the workload's path, counted by the app over the same span)."""
    first = (before.get("net_dev") or {}).get(step.name) if before else None
    last = (after.get("net_dev") or {}).get(step.name) if after else None
    if not isinstance(first, dict) or not isinstance(last, dict):
        return {"missing": "the app has no inside view of its interfaces" if not after or "net_dev" not in after
                else f"the app sees no interface {step.name}"}
    try:
        delta = {name: int(last[name]) - int(first[name]) for name in COUNTER_NAMES}
    except (KeyError, TypeError, ValueError):
        return {"missing": "the app's counters are unreadable"}
    packets, size = crossings(delta, step.name == "lo")
    return {"delta": delta, "requests_served": served, "packets_per_request": _per(packets, served),
            "bytes_per_request": _per(size, served)}
