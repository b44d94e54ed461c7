"""The complete schema: every module that declares tables, imported so that `metadata` holds them all.

Migrations and the schema check read `metadata` from here; a new table module is added to this list.
"""

from __future__ import annotations

from muster.store import (
    tables,
    tables_assignment_filters,
    tables_audit,
    tables_corporate_identifiers,
    tables_directory,
    tables_enrollment_attempts,
    tables_enrollment_restrictions,
    tables_enrollment_type_profiles,
    tables_identity,
    tables_rbac,
    tables_sign_in,
    tables_terms,
)
from muster.store.tables import metadata

TABLE_MODULES = (
    tables,
    tables_identity,
    tables_rbac,
    tables_audit,
    tables_sign_in,
    tables_directory,
    tables_terms,
    tables_corporate_identifiers,
    tables_assignment_filters,
    tables_enrollment_restrictions,
    tables_enrollment_attempts,
    tables_enrollment_type_profiles,
)

# Expression indexes created by hand-written migrations (see versions/0002_device_list_indexes.py): the schema
# comparison leaves them out, since they cannot be declared portably in the table modules.
MIGRATION_ONLY_INDEXES = frozenset({"ix_devices_serial_key", "ix_devices_os_last_sync", "ix_devices_last_sync"})


def declared_in_metadata(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's `include_object` hook: everything but the migration-only indexes."""
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


__all__ = ["MIGRATION_ONLY_INDEXES", "TABLE_MODULES", "declared_in_metadata", "metadata"]
