"""enrollment restrictions (platform and device limit)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TAG_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "enrollment_restrictions",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("configuration_type", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1500), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("scope_tag_ids", TAG_LIST, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_enrollment_restrictions_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_restrictions")),
    )
    op.create_index(op.f("ix_enrollment_restrictions_org_id"), "enrollment_restrictions", ["org_id"], unique=False)
    op.create_index(
        "ix_enrollment_restrictions_list",
        "enrollment_restrictions",
        ["org_id", "configuration_type", "platform", "priority"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_enrollment_restrictions_list", table_name="enrollment_restrictions")
    op.drop_index(op.f("ix_enrollment_restrictions_org_id"), table_name="enrollment_restrictions")
    op.drop_table("enrollment_restrictions")
