"""Device categories and terms and conditions (seed-catalog-A E18, E19): the policies and users' answers."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from muster.domain.rbac import TaggedObject
from muster.store.scope_tags import scope_tags_column, tagged_table_info
from muster.store.tables import metadata, org_column, ts_column

# Graph `deviceCategory`; devices point at one with `devices.device_category_id` (null: "Unassigned").
device_categories = Table(
    "device_categories",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(256), nullable=False),
    Column("name_key", String(256), nullable=False),  # casefolded display name: unique per organisation
    Column("description", String(1024)),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    UniqueConstraint("org_id", "name_key", name="uq_device_categories_org_name"),
    info=tagged_table_info(TaggedObject.DEVICE_CATEGORY),
)

# Graph `termsAndConditions`; `targets` holds the assignment targets (`AssignmentTarget.to_row()` dicts).
terms_and_conditions = Table(
    "terms_and_conditions",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(256), nullable=False),
    Column("description", String(1024)),
    Column("title", String(256)),
    Column("body_text", Text),
    Column("acceptance_statement", Text),
    Column("version", Integer, nullable=False),
    Column("targets", JSON, nullable=False),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    info=tagged_table_info(TaggedObject.TERMS_AND_CONDITIONS),
)

# One row per user and accepted version: who accepted which version when (TC-06, TC-07).
terms_acceptances = Table(
    "terms_acceptances",
    metadata,
    Column("terms_id", String(36), ForeignKey("terms_and_conditions.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    org_column(),
    Column("user_principal_name", String(320), nullable=False),  # kept if the user leaves the directory
    ts_column("accepted_at", nullable=False),
)

# Each time a user declined (TC-10): the incomplete-enrollment report counts these.
terms_declines = Table(
    "terms_declines",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("terms_id", String(36), ForeignKey("terms_and_conditions.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("user_principal_name", String(320), nullable=False),
    Column("version", Integer, nullable=False),
    ts_column("declined_at", nullable=False),
    Index("ix_terms_declines_terms_user", "terms_id", "user_id"),
    Index("ix_terms_declines_org_declined", "org_id", "declined_at"),
)
