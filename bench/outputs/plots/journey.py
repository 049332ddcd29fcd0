"""The journey of one request: per layer, a waterfall of the segments its latency is made of, with
the hops crossed on the way (packets and bytes per request at each interface).

One panel per layer, each on its own time scale (a VM under TCG would flatten the rest): rows top
to bottom in the order a request meets them, each segment starting where the one before ended, so
the segments add up to the measured mean latency. Above each segment, the interfaces the request
crossed to reach that process. Read from the run through bench.model.journey only.
"""

from __future__ import annotations

from pathlib import Path

from bench.model import Run
from bench.model.journey import Hop, Journey, journeys
from bench.outputs.plots._common import colour, new_figure, number, plain_ticks, save, styled, text_on, tick_label
from bench.vocabulary import finite

UNATTRIBUTED_COLOUR = "#d9d9d9"
SHORT = {"in_app": "in the app (Server-Timing)", "unattributed": "not attributed"}
IN_APP_COLOUR = "#000000"


def hop_name(hop: Hop) -> str:
    """An interface as a reader knows it: veth names change with every start, so its kind instead."""
    if hop.step == "inside":
        return f"{hop.name} inside"
    name = "veth" if hop.kind == "veth" else hop.name
    return f"{name} (engine ns)" if hop.netns == "engine" else name


def hop_text(hop: Hop) -> str:
    """One interface with what it carried per request: `docker0 2.0 pkt, 326 B`."""
    if not finite(hop.packets_per_request):
        return f"{hop_name(hop)} –"
    flag = " (other traffic!)" if hop.flagged else ""
    size = number(hop.bytes_per_request) if hop.bytes_per_request else "0"
    return f"{hop_name(hop)} {hop.packets_per_request:.1f} pkt/{size} B{flag}"


def crossed_before(journey: Journey) -> dict[int, list[Hop]]:
    """Segment index -> the interfaces a request crosses to reach that segment's process: those
    before each forwarder go to it, the rest to the app's segment."""
    crossed: dict[int, list[Hop]] = {}
    pending: list[Hop] = []
    positions = {segment.role: index for index, segment in enumerate(journey.segments) if segment.kind == "process"}
    app_index = next((index for index, segment in enumerate(journey.segments) if segment.kind == "app"), None)
    for hop in journey.hops:
        if hop.step == "process":
            if hop.name in positions:
                crossed[positions[hop.name]] = pending
            pending = []
        else:
            pending.append(hop)
    if app_index is not None:
        crossed[app_index] = pending
    return crossed


def _segment_colour(run: Run, journey: Journey, kind: str, role: str | None) -> str:
    if kind == "unattributed":
        return UNATTRIBUTED_COLOUR
    if kind == "in_app":
        return IN_APP_COLOUR
    if kind == "app":
        return colour(run, *journey.key)
    found = run.roles.get(role or "")
    return found.colour if found else "#999999"


def _draw(ax, run: Run, journey: Journey) -> None:
    rows = [(SHORT.get(segment.kind, segment.label), segment.us, segment.kind, segment.role)
            for segment in journey.segments]
    labels = {key: role.label for key, role in run.roles.items()}
    rows[:0] = [(f"{labels.get(role, role)}: none ran", 0.0, "absent", role) for role in journey.absent_roles]
    crossed = {index + len(journey.absent_roles): hops for index, hops in crossed_before(journey).items()}
    start = 0.0
    for row, (label, us, kind, role) in enumerate(rows):
        fill = _segment_colour(run, journey, kind, role)
        ax.barh(row, us, left=start, height=0.62, color=fill, edgecolor="white",
                hatch="//" if kind == "unattributed" else None)
        words = "0 µs" if kind == "absent" or us == 0 else number(us, "µs")
        inside_bar = us > 0.16 * journey.latency_us
        ax.text(start + (us / 2 if inside_bar else us) + (0 if inside_bar else journey.latency_us * 0.008), row, words,
                va="center", ha="center" if inside_bar else "left", fontsize=12,
                color=text_on(fill) if inside_bar else "#1d1d1d").set_in_layout(False)
        if crossed.get(row):
            ax.text(start, row - 0.4, "via " + " → ".join(hop_text(hop) for hop in crossed[row]), va="bottom",
                    ha="left", fontsize=11, color="#333333").set_in_layout(False)
        start += us
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label.replace(" (", "\n(", 1) for label, *_ in rows])
    ax.invert_yaxis()
    ax.set_ylim(len(rows) - 0.5, -1.1)  # room above the first row for its hops
    ax.set_xlim(0, journey.latency_us * 1.18)
    ax.grid(axis="y", visible=False)
    plain_ticks(ax.xaxis)
    ax.set_xlabel("µs of one request (mean)", fontsize=12)
    share = journey.attributed_us / journey.latency_us if journey.latency_us else 0.0
    title = (f"{tick_label(*journey.key, two_lines=False)}: {number(journey.latency_us, 'µs')} "
             f"({journey.latency_source}, {journey.connections or '?'} connection"
             f"{'s' if (journey.connections or 0) != 1 else ''}), {min(share, 1.0):.0%} attributed")
    if journey.overlap_us > 0:
        title += f" (CPU exceeds it by {number(journey.overlap_us, 'µs')}: overlapped)"
    if journey.reached_at:
        title += f"; loaded at {journey.reached_at}"
    ax.set_title(title, fontsize=13, loc="left", color="#1d1d1d")


@styled
def journey(run: Run, out_dir: Path) -> list[Path]:
    """One panel per layer: the waterfall of one request's latency, with the hops on its way."""
    found = [item for item in journeys(run) if item.latency_us > 0]
    if not found:
        return []
    heights = [len(item.segments) + len(item.absent_roles) + 1.6 for item in found]
    figure = new_figure(15.0, 0.62 * sum(heights) + 1.4)
    axes = figure.subplots(len(found), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, item in zip(axes[:, 0], found):
        _draw(ax, run, item)
    figure.suptitle(f"The journey of one request ({found[0].workload}): where its latency goes, hop by hop",
                    fontsize=18)
    return save(figure, out_dir, "journey")
