"""The report's section on the journey of one request: the figure, one row per hop, and the words a
reader needs to trust the counters. Built from bench.model.journey only."""

from __future__ import annotations

from dataclasses import dataclass

from bench.model import Run
from bench.model.journey import Journey, journeys
from bench.outputs.plots.journey import hop_name
from bench.vocabulary import MISSING, fmt, label


def _where(step: str, netns: str) -> str:
    if step == "inside":
        return "inside the layer (the app's /stats)"
    return "the private engine's namespace" if netns == "engine" else "host"


@dataclass(frozen=True)
class HopRow:
    """One step of a layer's path: an interface with its packets and bytes per request, or a process
    with its CPU per request."""

    label: str
    colour: str
    hop: str
    where: str
    packets: str = MISSING  # per request
    bytes: str = MISSING  # per request
    cpu: str = MISSING  # µs per request
    note: str = ""
    traced: str = MISSING  # packets per request the trace saw


def hop_rows(run: Run, found: list[Journey]) -> list[HopRow]:
    """One row per step of every layer's path: interfaces with packets and bytes per request,
    processes with their CPU per request."""
    rows = []
    for item in found:
        name, hue = label(*item.key), run.colour(*item.key)
        cpu = {segment.role: (segment.label, segment.us) for segment in item.segments if segment.kind == "process"}
        for hop in item.hops:
            traced = fmt(hop.traced_packets_per_request, 2)
            if hop.step == "process":
                role, us = cpu.get(hop.name, (hop.name, None))  # QEMU's: less the app inside it
                rows.append(HopRow(name, hue, role, "host process", cpu=fmt(us), traced=traced))
            else:
                rows.append(HopRow(name, hue, hop_name(hop), _where(hop.step, hop.netns),
                                   packets=fmt(hop.packets_per_request, 2), bytes=fmt(hop.bytes_per_request, 0),
                                   note=("other traffic: the quiet baseline explains "
                                         f"{hop.background_share:.0%} of it" if hop.flagged else ""), traced=traced))
        for role in item.absent_roles:
            found_role = run.roles.get(role)
            rows.append(HopRow(name, hue, found_role.label if found_role else role, "none ran", cpu="0",
                               note="no such process in these trials"))
    return rows


@dataclass(frozen=True)
class JourneySummaryRow:
    """A layer's latency, how much of it the hops explain, and what NAT and connection tracking saw."""

    label: str
    colour: str
    latency: str  # µs
    source: str
    attributed: str  # µs
    overlap: str  # µs
    dnat: str  # packets
    conntrack: str  # entries added
    reached_at: str


def summary_rows(run: Run, found: list[Journey]) -> list[JourneySummaryRow]:
    """Per layer: its latency, how much of it is attributed, and what NAT and conntrack saw."""
    return [JourneySummaryRow(label(*item.key), run.colour(*item.key), fmt(item.latency_us, 0), item.latency_source,
                              fmt(item.attributed_us, 0), fmt(item.overlap_us, 0) if item.overlap_us else MISSING,
                              fmt(item.dnat_packets, 0), fmt(item.conntrack_added, 0), item.reached_at or "127.0.0.1")
            for item in found]


def journey_section(run: Run, embedded: list) -> dict:
    """What the template's journey section shows (empty lists when the run counted no hops)."""
    found = journeys(run)
    return {"journey": next((chart for chart in embedded if chart.name == "journey"), None),
            "journey_workload": found[0].workload if found else None,
            "journey_rows": hop_rows(run, found), "journey_summary": summary_rows(run, found),
            "journey_traced": any(hop.traced_packets_per_request is not None for item in found for hop in item.hops)}
