"""Role-based access tables: role definitions, role assignments and scope tags.

The tags of each scope-tagged object live on the object's own row (see `muster.store.scope_tags`).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, String, Table, Text, UniqueConstraint

from muster.store.tables import metadata, org_column, ts_column

role_definitions = Table(
    "role_definitions",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(256), nullable=False),
    Column("description", Text),
    Column("is_built_in", Boolean, nullable=False),
    Column("permissions", JSON, nullable=False),  # Intune resource actions, e.g. "Microsoft.Intune_Roles_Read"
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    UniqueConstraint("org_id", "display_name", name="uq_role_definitions_org_name"),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("role_definition_id", String(36), ForeignKey("role_definitions.id"), nullable=False, index=True),
    Column("display_name", String(256), nullable=False),
    Column("description", Text),
    Column("members", JSON, nullable=False),  # user, group or API client/token ids
    Column("scope_group_ids", JSON, nullable=False),
    # Never empty: an assignment created without tags gets Default ("0"). Null means every tag (all scope).
    Column("scope_tag_ids", JSON),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
)

role_scope_tags = Table(
    "role_scope_tags",
    metadata,
    Column("org_id", String(36), ForeignKey("organizations.id"), primary_key=True),
    Column("id", String(36), primary_key=True),  # "0" is the built-in Default tag of every organisation
    Column("display_name", String(128), nullable=False),
    Column("description", Text),
    Column("is_built_in", Boolean, nullable=False),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    UniqueConstraint("org_id", "display_name", name="uq_role_scope_tags_org_name"),
)
