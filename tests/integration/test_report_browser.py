"""The report as a reader sees it: headless Chromium renders it to a screenshot."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bench.outputs.report import write_report
from tests.conftest import require
from tests.unit.test_plots import PNG_MAGIC, copy_run

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


def test_chromium_renders_the_report(tmp_path):
    browser = shutil.which(CHROMIUM) or shutil.which("chromium")
    require(browser is not None, "chromium is not installed: apt-get install chromium")
    report = write_report(copy_run(tmp_path))
    screenshot = tmp_path / "report.png"
    completed = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1280,2400",
         report.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert screenshot.is_file(), f"no screenshot (exit {completed.returncode}): {completed.stderr[-2000:]}"
    data = screenshot.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 100_000  # text, tables and the headline chart, not a blank page
