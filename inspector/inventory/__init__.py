"""The compliance inventory: every document, stored, kept current, with its history.

``Inventory`` is the library's entry point (:mod:`inspector.inventory.inventory`). It needs the
``inventory`` extra (SQLAlchemy, alembic, psycopg); importing this package does not, so the
command line's help works without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Inventory"]


def __getattr__(name: str) -> Any:
    if name == "Inventory":
        from inspector.inventory.inventory import Inventory

        return Inventory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
