"""A cell's memory as a layer cake: PSS per layer (role), the slices adding up to the cell's bar.
A role the app runs inside (QEMU) splits into the app (its own view from inside) and the rest
(guest kernel and devices). The cake chart and the report's words about each layer read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.roles import APP, Role
from bench.vocabulary import FALLBACK_COLOUR, finite

if TYPE_CHECKING:
    from bench.model.cell import Cell
    from bench.model.run import Run

REST = ".rest"  # the key suffix of what is left of a role the app runs inside, once the app is taken out


@dataclass(frozen=True)
class Slice:
    """One layer of the cake."""

    mb: float  # PSS in MiB
    label: str
    colour: str


def ordered_roles(run: "Run", roles) -> list[str]:
    """Role keys in the run's declared order, then any it did not declare."""
    known = list(run.roles)
    return [r for r in known if r in roles] + [r for r in roles if r not in known]


def role_of(run: "Run", key: str) -> Role:
    """The run's role of that key, or a plain grey one named after the key."""
    return run.roles.get(key) or Role(key, key, FALLBACK_COLOUR)


def memory_slices(run: "Run", cell: "Cell") -> dict[str, Slice]:
    """PSS in MiB per layer of one cell, by role key (and `<key>.rest` for a split role)."""
    slices: dict[str, Slice] = {}
    inside = cell.inside.rss_mb if cell.inside else None
    for key in ordered_roles(run, cell.roles):
        pss, role = cell.roles[key].pss_mb, role_of(run, key)  # PSS: the slices add up to the bar
        if not finite(pss):
            continue
        if role.contains_app and finite(inside) and 0 < inside <= pss:
            app = role_of(run, APP.key)
            before = slices[APP.key].mb if APP.key in slices else 0.0
            slices[APP.key] = Slice(before + inside, f"the {app.label}", app.colour)
            slices[key + REST] = Slice(pss - inside, role.remainder_label or f"{role.label}, the rest",
                                       role.remainder_colour)
        elif role.contains_app:
            slices[key] = Slice(pss, f"{role.label}, not split (no view from inside)", role.colour)
        else:
            before = slices[key].mb if key in slices else 0.0
            slices[key] = Slice(before + pss, f"the {role.label}" if key == APP.key else role.label, role.colour)
    return slices
