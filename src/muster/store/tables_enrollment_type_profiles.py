"""Apple enrollment type profiles (Graph `appleUserInitiatedEnrollmentProfile`: Device vs User Enrollment)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table

from muster.domain.rbac import TaggedObject
from muster.store.scope_tags import scope_tags_column, tagged_table_info
from muster.store.tables import metadata, org_column, ts_column

# One row per profile; priorities 1..N per organisation. `enrollment_type_options` holds the user's choice as
# [[ownerType, enrollmentType], ...] (empty: no choice); `targets` the assignment targets (`AssignmentTarget.to_row()`
# dicts). Scope tags are counted with the enrollment configurations' kind until the lead adds a kind of its own
# (nothing looks this table up by kind).
enrollment_type_profiles = Table(
    "enrollment_type_profiles",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(200), nullable=False),
    Column("description", String(1500)),
    Column("platform", String(20), nullable=False),
    Column("default_enrollment_type", String(40), nullable=False),
    Column("enrollment_type_options", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("targets", JSON, nullable=False),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    Index("ix_enrollment_type_profiles_priority", "org_id", "priority"),
    info=tagged_table_info(TaggedObject.ENROLLMENT_TYPE_PROFILE),
)
