"""Tables for sign-in: OAuth signing keys, API clients and their credentials, local account credentials,
replay records of client assertions, and pending device-code logins. Secrets are stored hashed or encrypted."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from muster.store.tables import metadata, org_column, ts_column

# The ES256 keys that sign access tokens (private key encrypted with the master key); newest signs.
oauth_signing_keys = Table(
    "oauth_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    org_column(),
    Column("key_encrypted", LargeBinary, nullable=False),
    ts_column("created_at", nullable=False),
)

# Graph `application`: an API client that signs in with client credentials.
api_clients = Table(
    "api_clients",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("app_id", String(36), nullable=False, unique=True),
    Column("display_name", String(256), nullable=False),
    ts_column("created_at", nullable=False),
)

api_client_passwords = Table(
    "api_client_passwords",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("client_id", String(36), ForeignKey("api_clients.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("display_name", String(256)),
    Column("hint", String(8), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    ts_column("start_at", nullable=False),
    ts_column("end_at", nullable=False),
)

api_client_keys = Table(
    "api_client_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("client_id", String(36), ForeignKey("api_clients.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(256)),
    Column("thumbprint_sha1", String(40), nullable=False),
    Column("certificate_pem", Text, nullable=False),
    ts_column("start_at", nullable=False),
    ts_column("end_at", nullable=False),
    UniqueConstraint("client_id", "thumbprint_sha1", name="uq_api_client_keys_client_thumbprint"),
)

# `jti`s of accepted client assertions (RFC 7523 §3 item 7), kept until the assertion expires.
oauth_seen_assertions = Table(
    "oauth_seen_assertions",
    metadata,
    Column("client_id", String(36), primary_key=True),
    Column("jti", String(256), primary_key=True),
    ts_column("expires_at", nullable=False),
    Index("ix_oauth_seen_assertions_expires", "expires_at"),
)

# Pending device authorization grants (RFC 8628); the device code is kept only as its SHA-256.
device_codes = Table(
    "device_codes",
    metadata,
    Column("device_code_sha256", String(64), primary_key=True),
    org_column(),
    Column("user_code", String(8), nullable=False, unique=True),
    Column("client_id", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # pending | approved | denied | redeemed
    Column("user_id", String(36)),
    Column("display_name", String(256)),
    Column("amr", String(64)),
    ts_column("expires_at", nullable=False),
    ts_column("last_polled_at"),
    Column("interval_seconds", Integer, nullable=False),
    ts_column("created_at", nullable=False),
)

# Local sign-in for directory users: an argon2id password hash and an optional TOTP second factor.
user_credentials = Table(
    "user_credentials",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("totp_required", Boolean, nullable=False),  # enroll TOTP at the next sign-in when not confirmed
    Column("totp_secret_encrypted", LargeBinary),
    ts_column("totp_confirmed_at"),
    Column("failed_attempts", Integer, nullable=False),
    ts_column("locked_until"),
    Column("last_totp_step", BigInteger),
    ts_column("updated_at", nullable=False),
)
