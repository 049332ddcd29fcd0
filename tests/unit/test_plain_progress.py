"""Where the live panel does not suit (NO_COLOR, CI), a run prints plain lines even on a real
terminal: it only appends, never hides the cursor, erases or moves a line.
The command line runs here with its console writing to a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import threading

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench.cli import app
from tests.fake_setup import registered

# What a redraw sends: hide/show the cursor, erase a line, move the cursor up, return to column 0.
REDRAWS = ("\x1b[?25l", "\x1b[?25h", "\x1b[2K", "\x1b[1A", "\x1b[1G", "\r")


class PseudoTerminal:
    """A pty whose other end is read into `chunks` by a thread, as a terminal would display it."""

    def __init__(self):
        self.leader, self.follower = pty.openpty()
        self.file = os.fdopen(self.follower, "w", encoding="utf-8", closefd=False)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.leader, 65536)
            except OSError:  # EIO: the last writer closed its end
                return
            if not data:
                return
            self.chunks.append(data)

    def text(self) -> str:
        self.file.flush()
        os.close(self.follower)
        self.reader.join(timeout=10)
        os.close(self.leader)
        return b"".join(self.chunks).decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.parametrize("setting", [{"NO_COLOR": "1"}, {"CI": "true"}])
def test_a_run_without_the_live_panel_only_appends_lines_on_a_terminal(tmp_path, monkeypatch, setting):
    for name in ("NO_COLOR", "CI", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"TERM": "xterm-256color", **setting}.items():
        monkeypatch.setenv(name, value)
    terminal = PseudoTerminal()
    console = Console(file=terminal.file, width=200, highlight=False)
    assert console.is_terminal
    monkeypatch.setattr("bench.cli.run.console", console)
    with registered():
        outcome = CliRunner().invoke(app, ["run", "--setups", "inproc", "--workloads", "hello", "--duration", "0.3",
                                           "--warmup", "0", "--repeat", "2", "--connections", "1", "--no-report",
                                           "--out", str(tmp_path)])
    shown = terminal.text()
    assert outcome.exit_code == 0, outcome.output + shown
    assert [sequence for sequence in REDRAWS if sequence in shown] == [], repr(shown[:600])
    shown = re.sub(r"\x1b\[[\d;]*m", "", shown)  # styles (bold, dim) are not redraws: NO_COLOR drops colours only
    trial_lines = [line.rstrip() for line in shown.splitlines() if "inproc (plain) / hello:" in line]
    assert len(trial_lines) == 2 and trial_lines[0].endswith("(1/2)") and trial_lines[1].endswith("(2/2)"), shown


def _fleet_view_output(monkeypatch, setting: dict[str, str]) -> str:
    """What the fleet's view writes to a pseudo-terminal for a host's trial and its end."""
    from bench.events import TrialDone, TrialStarted
    from bench.outputs.fleet_view import FleetProgressView

    for name in ("NO_COLOR", "CI", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"TERM": "xterm-256color", **setting}.items():
        monkeypatch.setenv(name, value)
    terminal = PseudoTerminal()
    console = Console(file=terminal.file, width=200, highlight=False)
    with FleetProgressView(console) as view:
        view(TrialStarted("bare / hello, repeat 1", done=1, total=2, host="lab1", trial="bare--hello--r0",
                          setup="bare", variant="default", workload="hello"))
        view(TrialDone("bare / hello: 1,234 req/s", done=1, total=2, host="lab1", trial="bare--hello--r0"))
    return terminal.text()


@pytest.mark.parametrize("setting", [{"NO_COLOR": "1"}, {"CI": "true"}])
def test_a_fleet_without_the_live_panel_only_appends_lines_on_a_terminal(monkeypatch, setting):
    text = _fleet_view_output(monkeypatch, setting)
    assert "[lab1]   bare / hello: 1,234 req/s" in text
    assert not [code for code in REDRAWS if code in text], repr(text)


def test_a_fleet_on_a_terminal_that_suits_draws_its_bars(monkeypatch):
    """The other side of the test above, so that it can fail: here the bars redraw."""
    text = _fleet_view_output(monkeypatch, {})
    assert any(code in text for code in REDRAWS), repr(text)
