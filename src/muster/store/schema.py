"""The complete schema: every module that declares tables, imported so that `metadata` holds them all.

Migrations and the schema check read `metadata` from here; a new table module is added to this list.
"""

from __future__ import annotations

from muster.store import tables
from muster.store.tables import metadata

TABLE_MODULES = (tables,)

__all__ = ["TABLE_MODULES", "metadata"]
