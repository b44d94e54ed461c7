"""corporate device identifiers and device enrollment managers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imported_device_identities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("identity_type", sa.String(length=30), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=128), nullable=True),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("enrollment_state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_imported_device_identities_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_device_identities")),
        sa.UniqueConstraint("identifier", "identity_type", "org_id", name="uq_imported_device_identities_identifier"),
    )
    op.create_index("ix_imported_device_identities_org_id", "imported_device_identities", ["org_id"])
    op.create_table(
        "device_enrollment_managers",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("added_by", sa.String(length=256), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_device_enrollment_managers_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_device_enrollment_managers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_device_enrollment_managers")),
    )
    op.create_index("ix_device_enrollment_managers_org_id", "device_enrollment_managers", ["org_id"])


def downgrade() -> None:
    op.drop_table("device_enrollment_managers")
    op.drop_table("imported_device_identities")
