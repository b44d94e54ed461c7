"""Tables of the audit log (Graph `auditEvents`) and of webhook subscriptions with their delivery outbox."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from muster.store.tables import metadata, org_column, ts_column

# One row per audited activity: an admin request (with the details services recorded while serving it), a
# refused request (category "security"), a device security event, or a background job's change.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    ts_column("occurred_at", nullable=False),
    Column("category", String(80), nullable=False),
    Column("activity", String(120), nullable=False),
    Column("activity_type", String(200), nullable=False),
    Column("operation_type", String(20), nullable=False),  # Create | Delete | Patch | Action | Get
    Column("result", String(20), nullable=False),  # success | failure
    Column("status_code", Integer),
    Column("correlation_id", String(64)),
    Column("actor_type", String(20), nullable=False),  # ItPro | Application | Device | System | Unknown
    Column("actor_id", String(320)),
    Column("actor_name", String(320), nullable=False),
    Column("ip_address", String(64)),
    Column("http_method", String(10)),
    Column("path", String(2000)),
    Column("resources", JSON, nullable=False),  # Graph auditResource list, values already redacted
    Column("detail", JSON, nullable=False),  # redacted request body and service details
    Index("ix_audit_log_time", "org_id", "occurred_at"),
    Index("ix_audit_log_category_time", "org_id", "category", "occurred_at"),
    Index("ix_audit_log_activity_type", "org_id", "activity_type"),
    Index("ix_audit_log_actor", "org_id", "actor_name"),
    Index("ix_audit_log_correlation", "correlation_id"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("notification_url", String(2048), nullable=False),
    Column("events", String(400), nullable=False),  # ",deviceEnrolled,commandCompleted," (LIKE-matchable)
    Column("description", String(400)),
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("created_by", String(320), nullable=False),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
)

# The outbox: one row per (event, subscription), written when the event happens, sent by the delivery worker.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column(
        "subscription_id",
        String(36),
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON sent (and signed) on every attempt
    Column("status", String(20), nullable=False),  # pending | delivering | succeeded | failed
    Column("attempts", Integer, nullable=False),
    ts_column("next_attempt_at"),
    ts_column("lease_until"),
    Column("last_status_code", Integer),
    Column("last_error", String(400)),
    ts_column("created_at", nullable=False),
    ts_column("delivered_at"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)
