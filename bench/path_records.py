"""The typed blocks of a load trial's `network_path` in a stored run (format 6; bench.records holds
the others): the steps from the load generator to the app, each with its packets and bytes, as
bench.metrics.netpath.PathProbe.summary writes them (its docstring says what each field means).

Written back with only the fields the probe gave, so the stored shape is the probe's own and an
absent path stays {}. A path's `facts` (what the setup says about it) keep open keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_serializer

from bench.records import Part


class AsGiven(Part):
    """A block written back with only the fields it was given (the probe leaves out what does not
    apply to a step), so the stored shape is the probe's own, and an absent path stays {}."""

    @model_serializer(mode="wrap")
    def _only_given(self, handler):
        data = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set or key not in
                type(self).model_fields}


class Counters(AsGiven):
    """An interface's counters over a span (packets and bytes; a rate over the window may be fractional)."""

    rx_packets: int | float | None = None
    tx_packets: int | float | None = None
    rx_bytes: int | float | None = None
    tx_bytes: int | float | None = None


class PathStep(AsGiven):
    """One step of the path: an interface ("interface"), a process every request crosses
    ("process", by role) or the app's own interface seen from inside its layer ("inside")."""

    step: str | None = None  # interface, process, inside
    name: str | None = None  # the interface's name
    kind: str | None = None  # loopback, veth, bridge, tap, ...
    netns: str | None = None
    role: str | None = None  # a process step's role key
    note: str | None = None  # what the inside view means here
    window: Counters | None = None  # over the measured window
    delta: Counters | None = None  # inside: between the app's /stats reads
    span: Counters | None = None  # first to last sampler read
    span_s: float | None = None
    quiet_packets_per_s: float | None = None
    requests_served: int | None = None  # inside: requests the app served over its delta
    packets_per_request: float | None = None
    bytes_per_request: float | None = None
    background_share: float | None = None  # the share of the window's packets that other traffic explains
    traced_packets_per_request: float | None = None  # the app's own packets, counted by eBPF
    missing: str | None = None  # why this step has no figures


class Conntrack(AsGiven):
    entries_before: int | None = None
    entries_after: int | None = None
    entries_added: int | None = None


class Traced(AsGiven):
    by: str | None = None  # bpftrace
    endpoints: list[list[str | int | None]] = Field(default_factory=list)  # (address, port) pairs traced
    unavailable: str | None = None  # why no trace was taken


class Dnat(AsGiven):
    port: int | None = None  # the published port whose DNAT rule was read
    read: str | None = None  # why it could not be read
    packets: int | None = None  # packets it matched over the trial (new connections)


class NetworkPathRecord(AsGiven):
    """A load trial's path, hop by hop; empty (stored as {}) for a trial that measured none."""

    window_s: float | None = None
    requests: int | None = None
    quiet_s: float | None = None
    path: list[PathStep] = Field(default_factory=list)
    conntrack: Conntrack | None = None
    reached_at: str | None = None  # the app's own address, when the load did not go to 127.0.0.1
    traced: Traced | None = None
    facts: dict[str, Any] = Field(default_factory=dict)  # what the setup says about its path: open keys
    dnat: Dnat | None = None
