"""assignment filters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TAG_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assignment_filters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1500), nullable=True),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("rule", sa.String(length=3072), nullable=False),
        sa.Column("scope_tag_ids", TAG_LIST, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_assignment_filters_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment_filters")),
        sa.UniqueConstraint("org_id", "name_key", name="uq_assignment_filters_org_name"),
    )
    op.create_index(op.f("ix_assignment_filters_org_id"), "assignment_filters", ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_assignment_filters_org_id"), table_name="assignment_filters")
    op.drop_table("assignment_filters")
