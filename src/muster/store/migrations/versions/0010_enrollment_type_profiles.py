"""enrollment type profiles (Apple Device vs User Enrollment, seed-catalog-C §1.10)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TAG_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "enrollment_type_profiles",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1500), nullable=True),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("default_enrollment_type", sa.String(length=40), nullable=False),
        sa.Column("enrollment_type_options", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("scope_tag_ids", TAG_LIST, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_enrollment_type_profiles_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_type_profiles")),
    )
    op.create_index(op.f("ix_enrollment_type_profiles_org_id"), "enrollment_type_profiles", ["org_id"], unique=False)
    op.create_index(
        "ix_enrollment_type_profiles_priority", "enrollment_type_profiles", ["org_id", "priority"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_enrollment_type_profiles_priority", table_name="enrollment_type_profiles")
    op.drop_index(op.f("ix_enrollment_type_profiles_org_id"), table_name="enrollment_type_profiles")
    op.drop_table("enrollment_type_profiles")
