"""enrollment attempts: the Incomplete user enrollments report (seed-catalog-A §2.9, E27)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_attempts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("portal_session", sa.String(length=64), nullable=False),
        sa.Column("user_principal_name", sa.String(length=320), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("screen", sa.String(length=30), nullable=False),
        sa.Column("screen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enrollment_request_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name="fk_enrollment_attempts_org_id_organizations"),
        sa.ForeignKeyConstraint(
            ["enrollment_request_id"],
            ["enrollment_requests.id"],
            name="fk_enrollment_attempts_request",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_attempts"),
    )
    op.create_index("ix_enrollment_attempts_org_id", "enrollment_attempts", ["org_id"], unique=False)
    op.create_index("ix_enrollment_attempts_portal_session", "enrollment_attempts", ["portal_session"], unique=False)
    op.create_index("ix_enrollment_attempts_org_started", "enrollment_attempts", ["org_id", "started_at"], unique=False)


def downgrade() -> None:
    op.drop_table("enrollment_attempts")
