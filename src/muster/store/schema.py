"""The complete schema: every module that declares tables, imported so that `metadata` holds them all.

Migrations and the schema check read `metadata` from here; a new table module is added to this list.
"""

from __future__ import annotations

from muster.store import tables, tables_audit, tables_directory, tables_identity, tables_rbac, tables_sign_in
from muster.store.tables import metadata

TABLE_MODULES = (tables, tables_identity, tables_rbac, tables_audit, tables_sign_in, tables_directory)

__all__ = ["TABLE_MODULES", "metadata"]
