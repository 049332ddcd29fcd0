"""The demo's final screen: the journey of one request through each layer, as text.

One line per layer: a bar of the layer's own mean latency split into its segments (each process's
CPU per request, the app's own time, what is not attributed), the figures, and the hops on the way
with packets and bytes per request. The same model as the report's journey figure.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from bench.model import Run
from bench.model.journey import journeys
from bench.outputs.plots.journey import crossed_before, hop_text
from bench.outputs.terminal import safe
from bench.vocabulary import label, short

BAR_CHARS = 30
STYLE = {"process": "cyan", "app": "bold", "in_app": "magenta", "unattributed": "dim"}
SHORT = {"app": "app process", "in_app": "in app", "unattributed": "not attributed"}


def journey_lines(run: Run) -> list[Text]:
    """The screen's lines (empty when the run counted no hops)."""
    found = journeys(run)
    if not found:
        return []
    connections = found[0].connections
    lines = [safe(f"The journey of one request ({found[0].workload}, {connections} connection"
                  f"{'s' if connections != 1 else ''}): where its mean latency goes, and what each hop carried",
                  "bold")]
    width = max(len(label(*item.key)) for item in found)
    for item in found:
        bar, done_us = Text(), 0.0
        scale = BAR_CHARS / max(item.latency_us, item.attributed_us, 1e-9)
        for segment in item.segments:  # cumulative rounding: the bar is never longer than BAR_CHARS
            chars = round((done_us + segment.us) * scale) - round(done_us * scale)
            done_us += segment.us
            bar.append(("▒" if segment.kind == "unattributed" else "█") * chars, STYLE.get(segment.kind, ""))
        bar.append(" " * max(0, BAR_CHARS - len(bar.plain)))
        roles = {key: role.label.split(" (")[0] for key, role in run.roles.items()}
        parts = [f"{SHORT.get(segment.kind) or segment.label.split(' (')[0]} {short(segment.us)}"
                 for segment in item.segments if segment.us >= 0.5 or segment.kind == "process"]
        parts += [f"{roles.get(role, role)} none" for role in item.absent_roles]
        line = safe(f"  {label(*item.key):<{width}}  ").append(bar)
        line.append(safe(f"  {short(item.latency_us)} µs = " + " + ".join(parts)))
        lines.append(line)
        crossed = [hop for hops in crossed_before(item).values() for hop in hops]
        if crossed:
            lines.append(safe(f"  {'':<{width}}  via " + " → ".join(hop_text(hop) for hop in crossed), "dim"))
    lines.append(safe("  µs per request; █ CPU of the processes on the way and the app's own time, ▒ not attributed "
                      "(waiting, wake-ups, queueing behind the other connections). The report draws it as a figure.",
                      "dim"))
    return lines


def print_journey(console: Console, run: Run) -> None:
    for line in journey_lines(run):
        console.print(line, soft_wrap=True)
