"""What every part of a scenario shares: unknown keys refused, values frozen once validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # scenario and workload names: safe in folder names


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
