"""scope tags kept on each tagged object's row; devices get a device category

Moves the tags of devices, enrollment program tokens and ADE profiles from `scope_tag_links` into a
`scope_tag_ids` list on each row (see `muster.store.scope_tags`: a scoped list tests the rows it reads instead of
probing another index per row), and adds `devices.device_category_id`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TAG_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TAGGED = {"devices": "managedDevice", "dep_tokens": "depOnboardingSetting", "ade_profiles": "depEnrollmentProfile"}


def upgrade() -> None:
    # No batch mode: on SQLite it would rebuild `devices` and lose the expression indexes of 0002.
    postgres = op.get_bind().dialect.name == "postgresql"
    aggregate = "jsonb_agg(tag_id ORDER BY tag_id)" if postgres else "json_group_array(tag_id)"
    for table, kind in TAGGED.items():
        op.add_column(table, sa.Column("scope_tag_ids", TAG_LIST, server_default='["0"]', nullable=False))
        op.execute(
            f"UPDATE {table} SET scope_tag_ids = (SELECT {aggregate} FROM scope_tag_links "
            f"WHERE object_type = '{kind}' AND object_id = {table}.id) "
            f"WHERE EXISTS (SELECT 1 FROM scope_tag_links WHERE object_type = '{kind}' AND object_id = {table}.id)"
        )
    op.add_column("devices", sa.Column("device_category_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_devices_device_category_id"), "devices", ["device_category_id"], unique=False)
    op.drop_index("ix_scope_tag_links_tag", table_name="scope_tag_links")
    op.drop_table("scope_tag_links")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "scope_tag_links",
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("tag_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("object_type", "object_id", "tag_id", name=op.f("pk_scope_tag_links")),
    )
    op.create_index("ix_scope_tag_links_tag", "scope_tag_links", ["object_type", "tag_id", "object_id"], unique=False)
    elements = (
        "jsonb_array_elements_text(t.scope_tag_ids) AS e(value)" if postgres else "json_each(t.scope_tag_ids) AS e"
    )
    for table, kind in TAGGED.items():
        op.execute(
            f"INSERT INTO scope_tag_links (object_type, object_id, tag_id) "
            f"SELECT '{kind}', t.id, e.value FROM {table} AS t, {elements}"
        )
        op.drop_column(table, "scope_tag_ids")
    op.drop_index(op.f("ix_devices_device_category_id"), table_name="devices")
    op.drop_column("devices", "device_category_id")
