"""Directory tables beyond users and groups (which live in `muster.store.tables`)."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from muster.store.tables import metadata, org_column, ts_column

# Bearer secrets an identity provider (Entra ID, Okta) presents to the SCIM endpoint; stored as SHA-256 only.
provisioning_tokens = Table(
    "provisioning_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(256), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_by", String(256), nullable=False),
    ts_column("created_at", nullable=False),
    ts_column("last_used_at"),
    ts_column("revoked_at"),
)
