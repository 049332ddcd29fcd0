"""What an inventory problem is, apart from the inventory's reader so that its guard and the old
hosts-file converter can raise it without importing the reader."""

from __future__ import annotations

from bench.errors import ProblemsError

ENV_PATH = "LAYERBENCH_INVENTORY"  # names the inventory when --inventory does not


class InventoryError(ProblemsError):
    """The inventory is missing, unreadable, unsafe, or names nothing; one line per problem."""
