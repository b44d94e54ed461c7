"""enrollment decisions: what the failures report and the device's Enrollment page show

Refusals by the enrollment gate fill the Enrollment failures report's columns (R-213); an admitting decision is
kept on its enrollment request and, at first enrollment, on the device (R-216). Devices are counted per user for
the device limit, hence the (org_id, user_principal_name) index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FAILURE_COLUMNS = (
    sa.Column("user_principal_name", sa.String(length=320), nullable=True),
    sa.Column("enrollment_method", sa.String(length=60), nullable=True),
    sa.Column("operating_system", sa.String(length=40), nullable=True),
    sa.Column("os_version", sa.String(length=40), nullable=True),
    sa.Column("serial_number", sa.String(length=80), nullable=True),
    sa.Column("failure_reason", sa.String(length=120), nullable=True),
    sa.Column("remediation", sa.Text(), nullable=True),
    sa.Column("decision", sa.JSON(), nullable=True),
)


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN (no batch mode): on SQLite a batch would rebuild `devices` and drop the
    # expression indexes of 0002.
    for column in FAILURE_COLUMNS:
        op.add_column("enrollment_failures", column)
    op.create_index("ix_enrollment_failures_org_time", "enrollment_failures", ["org_id", "occurred_at"], unique=False)
    op.add_column("enrollment_requests", sa.Column("decision", sa.JSON(), nullable=True))
    op.add_column("devices", sa.Column("enrollment_decision", sa.JSON(), nullable=True))
    op.create_index("ix_devices_org_user", "devices", ["org_id", "user_principal_name"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_devices_org_user", table_name="devices")
    op.drop_column("devices", "enrollment_decision")
    op.drop_column("enrollment_requests", "decision")
    op.drop_index("ix_enrollment_failures_org_time", table_name="enrollment_failures")
    for column in reversed(FAILURE_COLUMNS):
        op.drop_column("enrollment_failures", column.name)
