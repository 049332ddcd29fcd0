"""Opening a page in the default browser, only where one can show it."""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path


def has_display() -> bool:
    """True when a graphical session is there to show a browser (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_page(path: Path) -> bool:
    """Open `path` in the default browser when there is a display; False when it could not be opened."""
    if not has_display():
        return False
    try:
        return bool(webbrowser.open(Path(path).resolve().as_uri()))
    except webbrowser.Error:
        return False
