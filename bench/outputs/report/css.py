"""What the report's page takes from run.json into CSS, made safe (run.json is user-editable)."""

from __future__ import annotations

import re

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def css_colour(value: str | None) -> str:
    """A colour safe inside a style attribute: #rrggbb, or grey."""
    return value if isinstance(value, str) and _HEX.match(value) else "#999999"
