"""The live view of a run: what a class watches on a projector while the layers are measured.

One panel: the layer being measured and its narration, then one bar per layer for each measured
figure (throughput, p99 latency, CPU per request) as a ratio to the baseline, redrawn from a
bench.model.Run over the trials received so far, then the progress with the time remaining
(bench.countdown). Renders events only (bench.events); the CLI picks it when the output is a
terminal that takes it (`suits`), and the plain lines of bench.outputs.progress otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bench.countdown import Countdown, clock
from bench.events import (DiskEstimate, Event, Planned, Preparing, RepeatDecided, RunDone, RunStarted, TrialEnded,
                          TrialFailed, TrialStarted, Warned)
from bench.model import LayerRecord, Run
from bench.outputs.terminal import safe
from bench.outputs import rows
from bench.figures import metric, ratio_text
from bench.vocabulary import VERDICT_STYLE, cell_label, finite, label, percent, shade

LIVE_METRICS = ("throughput_rps", "latency_p99_ms", "cpu_us_per_request")
BAR_WIDTH = 10  # characters for the largest ratio of a column
EIGHTHS = " ▏▎▍▌▋▊▉"
RECENT_LINES = 2  # finished trials the panel keeps in view
MIN_LIGHTNESS = 0.45  # a bar as dark as the baseline's chart grey disappears on a dark terminal


def suits(console: Console) -> bool:
    """True when the live view can be shown: a real terminal, colours allowed, not CI."""
    if not console.is_terminal or console.is_dumb_terminal or console.no_color:
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "") in ("dumb", "unknown"):
        return False
    return os.environ.get("CI", "").lower() not in ("1", "true", "yes")


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `fraction` (0..1) of `width` characters, to an eighth of one."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    if eighths == 0 and fraction > 0:
        eighths = 1  # a figure that exists is never drawn as nothing
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def hue(run: Run, layer: LayerRecord) -> str:
    """The layer's colour as the charts draw it (bench.model.Run.colour), never so dark that a
    terminal's dark background swallows it."""
    return shade(run.colour(layer.setup, layer.variant, layer.app), 0, MIN_LIGHTNESS)


def bars_table(run: Run, layers: list[LayerRecord], workloads: list[str]) -> Table:
    """Per workload, one row per layer: for each live metric, a bar and the ratio to the baseline."""
    baseline = run.baseline
    ratios = {(row.setup, row.variant, row.app, row.workload, row.metric_key): row for row in rows.verdict_rows(run)}
    table = Table(box=None, padding=(0, 1), show_edge=False, title_justify="left",
                  title=safe(f"÷ {baseline} (1.00 = same as {baseline}) · red worse · green better · "
                             f"dim same (within ±{percent(run.min_effect)}) · yellow ? undecided", "dim"))
    table.add_column(safe("layer"), no_wrap=True)
    for key in LIVE_METRICS:
        meaning = metric(key)
        table.add_column(Text(meaning.label).append(f"\n{meaning.direction}", style="dim"), no_wrap=True)
    for workload in workloads:
        table.add_row(safe(workload, "bold"))
        scale = {key: max([1.0] + [row.value for (_, _, _, w, m), row in ratios.items()
                                   if w == workload and m == key and finite(row.value)]) for key in LIVE_METRICS}
        for layer in layers:
            table.add_row(*_layer_row(run, layer, workload, ratios, scale, hue(run, layer)))
    return table


def _layer_row(run: Run, layer: LayerRecord, workload: str, ratios: dict, scale: dict, colour: str) -> list[Text]:
    name = label(layer.setup, layer.variant, layer.app if run.multi_app else None)
    cell = run.cell(layer.setup, layer.variant, workload, layer.app)
    if cell is None or not cell.has_load:
        waiting = "failed" if cell is not None and cell.failed else "waiting…"
        return [safe(f"  {name}"), safe(waiting, "dim"), Text(""), Text("")]
    row = [safe(f"  {name}")]
    for key in LIVE_METRICS:
        if layer.setup == run.baseline:
            row.append(Text().append(bar(1.0 / scale[key]), style=colour).append(f" {ratio_text(1.0)}"))
            continue
        found = ratios.get((layer.setup, layer.variant, layer.app, workload, key))
        if found is None:
            row.append(safe("–", "dim"))
            continue
        style = VERDICT_STYLE[found.state] if found.rounds >= 2 else ""  # one round: no verdict to colour yet
        word = {"undecided": "?"}.get(found.state, found.state) if style else ""
        length = found.value / scale[key] if finite(found.value) else 0.0
        row.append(Text().append(bar(length), style=colour)
                   .append(f" {found.figure}", style=style).append(f" {word}".rstrip(), style=style))
    return row


class LiveView:
    """Renders runner events as one live panel (rich.live); a drop-in for bench.outputs.progress.ProgressView."""

    def __init__(self, console: Console, narrate: bool = True, now: Callable[[], float] = time.monotonic):
        self.console = console
        self.narrate = narrate
        self.now = now
        self.run_dir = Path(".")
        self.planned: Run | None = None  # the run as the plan event described it
        self.received: list = []  # TrialRecords of this session, in the order they ended
        self.countdown: Countdown | None = None
        self.workloads: list[str] = []
        self.bars: RenderableType | None = None  # rebuilt when a trial ends, not on every refresh
        self.current: tuple[str, str] = ("", "")  # (what is measured now, its layer's narration)
        self.recent: deque[Text] = deque(maxlen=RECENT_LINES)
        self.lock = threading.RLock()
        self.status = "preparing the setups…"
        self.over = False
        self.live = Live(console=console, get_renderable=self.render, refresh_per_second=2, transient=False)

    def __enter__(self) -> "LiveView":
        self.live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is not None:
            with self.lock:
                self.current, self.over = ("", ""), True
                self.status = "interrupted: the trials measured so far are kept"
        self.live.__exit__(*exc_info)

    def __call__(self, event: Event) -> None:
        with self.lock:  # the refresh thread draws from this state: change it only under the lock
            above = self._on(event)
        if above is not None:  # printed above the panel, outside the lock (printing takes Live's lock)
            self.console.print(above)
        self.live.refresh()

    def _on(self, event: Event) -> Text | None:
        """Take in one event; the line to print above the panel, if any."""
        match event:
            case RunStarted():
                self.run_dir = event.run_dir
                return safe(event.message, "dim")
            case Preparing():
                self.status = event.message
                return safe(event.message, "dim")
            case DiskEstimate():
                return safe(event.message, "dim")
            case Warned() | RepeatDecided():
                return safe(event.message, "yellow")
            case Planned():
                self._on_plan(event)
            case TrialStarted():
                self._on_trial(event)
            case TrialEnded():
                self._on_trial_ended(event)
            case RunDone():
                self._on_done()
        return None  # a fleet's own kinds (host, log, split) have no place in one run's panel

    def _on_plan(self, event: Planned) -> None:
        starts = event.starts
        self.countdown = Countdown(list(starts), event.at_most, now=self.now, budget_left_s=event.budget_left_s)
        record = event.record  # the runner's snapshot of the stored run
        self.planned = Run(record, self.run_dir) if record is not None else None
        self.workloads = list(dict.fromkeys(work.workload for start in starts for work in start.trials
                                            if work.kind == "load"))
        self.status = ""
        self._rebuild_bars()

    def _on_trial(self, event: TrialStarted) -> None:
        subject = cell_label(event.setup, event.variant, event.workload, self._shown_app(event.app))
        self.current = (subject, event.narration if self.narrate else "")
        if self.countdown is not None:
            self.countdown.trial_begins(event.trial)

    def _shown_app(self, app) -> str | None:
        """The app's name when the run holds several (the plan says which), else None."""
        several = self.planned is not None and len({layer.app for layer in self.planned.prepared_layers}) > 1
        return str(app) if several and app else None

    def _on_trial_ended(self, event: TrialEnded) -> None:
        self.recent.append(safe(event.message, "red" if isinstance(event, TrialFailed) else None))
        if event.record is not None:
            self.received.append(event.record)
        if self.countdown is not None:
            self.countdown.trial_ends(event.trial)
            coming = self.countdown.next_start()
            if coming is not None:  # a launch comes next: say which layer, while it starts
                self.current = (f"starting {label(coming.setup, coming.variant, coming.app)}…",
                                coming.narration if self.narrate else "")
        self._rebuild_bars()

    def _on_done(self) -> None:
        self.current, self.over = ("", ""), True
        if self.countdown is None:
            self.status = "done"
            return
        failed = sum(1 for record in self.received if record.status == "failed")
        self.status = (f"done: {self.countdown.finished} trials in {clock(self.countdown.elapsed_s())}"
                       + (f", {failed} failed" if failed else ""))

    def _rebuild_bars(self) -> None:
        if self.planned is None:
            return
        run = self.planned.with_trials(self.received)
        if run.baseline is None:
            self.bars = safe("no baseline layer in this run: no ratios to draw", "yellow")
            return
        workloads = self.workloads + [name for name in run.workloads if name not in self.workloads
                                      and any(cell.has_load for cell in run.cells if cell.workload == name)]
        self.bars = bars_table(run, run.prepared_layers, workloads) if workloads else None

    # ---- drawing ----------------------------------------------------------------------------

    def render(self) -> RenderableType:
        """The panel as it stands now (called on every refresh: the clock moves between events)."""
        with self.lock:
            return self._panel()

    def _panel(self) -> Panel:
        parts: list[RenderableType] = []
        subject, narration = self.current
        if subject:
            now = Table.grid(padding=(0, 1))  # a grid, so a narration that wraps keeps its indent
            now.add_row(Text("now", style="bold"), safe(subject, "bold cyan"))
            if narration:
                now.add_row(Text(""), safe(narration))
            parts.append(now)
        elif self.status:
            parts.append(safe(self.status, "bold"))
        if self.bars is not None:
            parts += [Text(""), self.bars]
        if self.countdown is not None:
            parts += [Text(""), self._progress_line()]
        parts += list(self.recent)
        title = safe(f"layerbench: {self.planned.info.scenario_name or ''}" if self.planned else "layerbench", "bold")
        return Panel(Group(*parts), title=title, title_align="left", expand=False)

    def _progress_line(self) -> RenderableType:
        countdown = self.countdown
        line = Table.grid(padding=(0, 2))
        line.add_row(ProgressBar(total=max(countdown.total, 1), completed=countdown.finished, width=30),
                     safe(f"{countdown.finished}/{countdown.total} trials"),
                     safe(f"elapsed {clock(countdown.elapsed_s())}"), self._remaining_text())
        return line

    def _remaining_text(self) -> Text:
        countdown = self.countdown
        if self.over or countdown.finished == countdown.total:
            return safe("")
        words = "at most about" if countdown.at_most else "about"
        guess = " (start-ups guessed)" if countdown.guessing else ""
        return safe(f"{words} {clock(countdown.remaining_s())} left{guess}", "bold")
