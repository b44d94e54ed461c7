"""Tables for user sign-in to the enrollment portal: the organisation's OpenID Connect identity provider."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, LargeBinary, String, Table

from muster.store.tables import metadata, ts_column

# One OpenID Connect provider per organisation; the client secret only ever encrypted (SecretBox).
identity_provider_settings = Table(
    "identity_provider_settings",
    metadata,
    Column("org_id", String(36), ForeignKey("organizations.id"), primary_key=True),
    Column("issuer", String(500)),  # null: no identity provider, local accounts only
    Column("client_id", String(256)),
    Column("client_secret_encrypted", LargeBinary),
    Column("scopes", String(500), nullable=False),  # space-separated, as OAuth sends them
    Column("user_principal_name_claim", String(64), nullable=False),
    Column("require_mfa_for_enrollment", Boolean, nullable=False),
    Column("mfa_acr_values", String(500), nullable=False),  # space-separated `acr` values that count as MFA
    Column("updated_by", String(256), nullable=False),
    ts_column("updated_at", nullable=False),
)
