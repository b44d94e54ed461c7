"""Enrollment restrictions (Graph `deviceEnrollmentConfiguration`: platform and device limit restrictions)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table

from muster.domain.rbac import TaggedObject
from muster.store.scope_tags import scope_tags_column, tagged_table_info
from muster.store.tables import metadata, org_column, ts_column

# One row per policy. `settings` holds the Graph settings of its type: a `deviceEnrollmentPlatformRestriction`
# (single platform), one per platform property (the default), or {"limit": n}. `targets` holds the assignment
# targets (`AssignmentTarget.to_row()` dicts). The defaults have fixed ids ("<org id>_DefaultLimit"...), so that
# creating them is idempotent across processes; their priority is 0, the others' 1..N within their list.
enrollment_restrictions = Table(
    "enrollment_restrictions",
    metadata,
    Column("id", String(80), primary_key=True),
    org_column(),
    Column("configuration_type", String(40), nullable=False),  # Graph deviceEnrollmentConfigurationType
    Column("platform", String(20)),  # single-platform restrictions only
    Column("display_name", String(200), nullable=False),
    Column("description", String(1500)),
    Column("priority", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("targets", JSON, nullable=False),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    Index("ix_enrollment_restrictions_list", "org_id", "configuration_type", "platform", "priority"),
    info=tagged_table_info(TaggedObject.ENROLLMENT_CONFIGURATION),
)
