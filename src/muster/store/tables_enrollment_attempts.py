"""Enrollment attempts (seed-catalog-A E27): the portal's record behind the Incomplete user enrollments report."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table

from muster.store.tables import metadata, org_column, ts_column

# One row per attempt (IER-02: a restart is a new row). `portal_session` is the portal session's random id, so
# that the session's later screens find their attempt; `enrollment_request_id` links the downloaded profile,
# through which the report learns whether the device enrolled.
enrollment_attempts = Table(
    "enrollment_attempts",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("portal_session", String(64), nullable=False, index=True),
    Column("user_principal_name", String(320), nullable=False),
    Column("platform", String(20), nullable=False),
    ts_column("started_at", nullable=False),
    Column("screen", String(30), nullable=False),
    ts_column("screen_at", nullable=False),
    ts_column("declined_at"),
    Column(
        "enrollment_request_id",
        String(36),
        # named by hand: the naming convention's name is longer than PostgreSQL's 63 characters
        ForeignKey("enrollment_requests.id", ondelete="SET NULL", name="fk_enrollment_attempts_request"),
    ),
    Index("ix_enrollment_attempts_org_started", "org_id", "started_at"),
)
