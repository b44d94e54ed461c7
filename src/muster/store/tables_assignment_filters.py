"""Assignment filters (Graph `deviceAndAppManagementAssignmentFilter`, seed-catalog-C §1.13)."""

from __future__ import annotations

from sqlalchemy import Column, String, Table, UniqueConstraint

from muster.domain.membership_rules import MAX_RULE_LENGTH
from muster.domain.rbac import TaggedObject
from muster.store.scope_tags import scope_tags_column, tagged_table_info
from muster.store.tables import metadata, org_column, ts_column

# The rule is kept as the admin wrote it; it is parsed again where it is used (with that use's property set).
assignment_filters = Table(
    "assignment_filters",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(200), nullable=False),
    Column("name_key", String(200), nullable=False),  # casefolded display name: unique per organisation
    Column("description", String(1500)),
    Column("platform", String(40), nullable=False),  # Graph devicePlatformType
    Column("rule", String(MAX_RULE_LENGTH), nullable=False),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    UniqueConstraint("org_id", "name_key", name="uq_assignment_filters_org_name"),
    info=tagged_table_info(TaggedObject.ASSIGNMENT_FILTER),
)
