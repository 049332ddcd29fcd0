"""The report's section on the journey of one request: the figure, one row per hop, and the words a
reader needs to trust the counters. Built from bench.model.journey only."""

from __future__ import annotations

from bench.model import Run
from bench.model.journey import Journey, journeys
from bench.outputs.plots._common import colour
from bench.outputs.plots.journey import hop_name
from bench.outputs.report.css import css_colour
from bench.vocabulary import fmt, label


def _where(step: str, netns: str) -> str:
    if step == "inside":
        return "inside the layer (the app's /stats)"
    return "the private engine's namespace" if netns == "engine" else "host"


def hop_rows(run: Run, found: list[Journey]) -> list[dict]:
    """One row per step of every layer's path: interfaces with packets and bytes per request,
    processes with their CPU per request."""
    rows = []
    for item in found:
        cpu = {segment.role: (segment.label, segment.us) for segment in item.segments if segment.kind == "process"}
        for hop in item.hops:
            row = {"label": label(*item.key), "colour": css_colour(colour(run, *item.key)), "packets": "–",
                   "bytes": "–", "cpu": "–", "note": "", "traced": fmt(hop.traced_packets_per_request, 2)}
            if hop.step == "process":
                name, us = cpu.get(hop.name, (hop.name, None))  # QEMU's: less the app inside it
                row.update(hop=name, where="host process", cpu=fmt(us))
            else:
                row.update(hop=hop_name(hop), where=_where(hop.step, hop.netns),
                           packets=fmt(hop.packets_per_request, 2), bytes=fmt(hop.bytes_per_request, 0),
                           note=("other traffic: the quiet baseline explains "
                                 f"{hop.background_share:.0%} of it" if hop.flagged else ""))
            rows.append(row)
        for role in item.absent_roles:
            found_role = run.roles.get(role)
            rows.append({"label": label(*item.key), "colour": css_colour(colour(run, *item.key)),
                         "hop": found_role.label if found_role else role, "where": "none ran", "packets": "–",
                         "bytes": "–", "cpu": "0", "note": "no such process in these trials", "traced": "–"})
    return rows


def summary_rows(run: Run, found: list[Journey]) -> list[dict]:
    """Per layer: its latency, how much of it is attributed, and what NAT and conntrack saw."""
    return [{"label": label(*item.key), "colour": css_colour(colour(run, *item.key)),
             "latency": fmt(item.latency_us, 0), "source": item.latency_source,
             "attributed": fmt(item.attributed_us, 0), "overlap": fmt(item.overlap_us, 0) if item.overlap_us else "–",
             "dnat": fmt(item.dnat_packets, 0), "conntrack": fmt(item.conntrack_added, 0),
             "reached_at": item.reached_at or "127.0.0.1"} for item in found]


def journey_section(run: Run, embedded: list[dict]) -> dict:
    """What the template's journey section shows (empty lists when the run counted no hops)."""
    found = journeys(run)
    return {"journey": next((chart for chart in embedded if chart["name"] == "journey"), None),
            "journey_workload": found[0].workload if found else None,
            "journey_rows": hop_rows(run, found), "journey_summary": summary_rows(run, found),
            "journey_traced": any(hop.traced_packets_per_request is not None for item in found for hop in item.hops)}
