"""device list indexes on the expressions the OData engine compares and sorts by

`store/odata.py` compares strings as `lower(column)` and sorts NULLs first ascending (last descending), which
plain column indexes cannot serve. Expression indexes cannot be declared portably in `store/tables.py`, so they
live here and are listed in `muster.store.schema.MIGRATION_ONLY_INDEXES` for the schema check. SQLite has no
operator classes nor NULLS ordering in index definitions; its NULLs already sort that way.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    pattern_ops = " text_pattern_ops" if postgres else ""
    nulls_last = " NULLS LAST" if postgres else ""
    op.execute(f"CREATE INDEX ix_devices_serial_key ON devices (org_id, lower(serial_number){pattern_ops}, id)")
    op.execute(
        "CREATE INDEX ix_devices_os_last_sync ON devices "
        f"(org_id, lower(operating_system), last_sync_at DESC{nulls_last}, id)"
    )
    op.execute(f"CREATE INDEX ix_devices_last_sync ON devices (org_id, last_sync_at DESC{nulls_last}, id)")


def downgrade() -> None:
    for name in ("ix_devices_last_sync", "ix_devices_os_last_sync", "ix_devices_serial_key"):
        op.drop_index(name, table_name="devices")
