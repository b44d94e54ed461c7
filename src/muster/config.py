"""Muster's configuration: environment variables (prefix `MUSTER_`) or a `.env`-style file.

Every setting has an embedded default so that `muster serve` works with no other service: a SQLite database,
a generated master key, CA and TLS certificate under the data directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """The configuration cannot work; the message tells the operator what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUSTER_", env_file=os.environ.get("MUSTER_CONFIG_FILE"))

    data_dir: Path = Field(default=Path("data"), description="Where the embedded defaults live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir.")
    public_url: str | None = Field(default=None, description="Base URL devices reach, e.g. https://mdm.example.com")
    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=1, le=65535)
    tls: bool = Field(default=True, description="Serve HTTPS; turn off behind a TLS-terminating proxy.")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    master_key: str | None = Field(default=None, description="Base64 of 32 bytes; encrypts secrets at rest.")
    master_key_file: Path | None = None
    client_cert_header: str | None = Field(
        default=None,
        description="Header where the TLS proxy forwards the device certificate (RFC 9440 or PEM).",
    )
    organization_name: str = "Muster"
    profile_signing_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (then any intermediates) that signs enrollment profiles; default: Muster's own.",
    )
    profile_signing_key_file: Path | None = Field(
        default=None, validate_default=True, description="Unencrypted PEM private key of profile_signing_cert_file."
    )
    apns_url: str = "https://api.push.apple.com"
    dep_url: str = Field(default="https://mdmenrollment.apple.com", description="Apple's DEP (ADE) API.")
    apple_device_ca_file: Path | None = Field(
        default=None,
        description="PEM of the CAs that issue Apple device identities (Apple iPhone Device CA): ADE profile "
        "requests must be signed by a device certificate they issued. Unset: any valid signature is accepted.",
    )
    ade_sync_lease_seconds: int = Field(default=120, ge=2, le=900, description="How long a sync run's lease lasts.")
    jobs_interval_seconds: float = Field(default=60.0, ge=0.1, le=3600, description="Background jobs' tick.")
    apns_ca_file: Path | None = Field(default=None, description="CA bundle to verify APNs (simulators only).")
    scep_challenge_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    access_token_lifetime_seconds: int = Field(
        default=3600, ge=60, le=86400, description="How long an OAuth access token (admin API bearer) is valid."
    )
    max_device_body_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    audit_retention_days: int = Field(
        default=365, ge=1, le=3650, description="Audit events older than this are purged (Intune keeps one year)."
    )
    webhook_retry_schedule_seconds: list[float] = Field(
        default=[60, 300, 1800, 7200, 43200],
        description="Waits before each retry of a failed webhook delivery; after the last one it is failed.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60, description="Per-attempt timeout.")
    webhook_concurrency: int = Field(default=8, ge=1, le=100, description="Deliveries in flight per process.")
    webhook_poll_seconds: float = Field(default=5.0, ge=0.05, le=300, description="How often due deliveries run.")
    webhook_allow_loopback_http: bool = Field(
        default=False, description="Development only: accept http:// webhook URLs on 127.0.0.1/localhost."
    )
    webhook_ca_file: Path | None = Field(default=None, description="CA bundle to verify webhook receivers.")
    workers: int = Field(default=1, ge=1, le=64)

    @field_validator("public_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (devices only talk to HTTPS servers)")
        return value.rstrip("/") if value else value

    @field_validator("profile_signing_key_file")
    @classmethod
    def _profile_signer_complete(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (info.data.get("profile_signing_cert_file") is None) != (value is None):
            raise ValueError(
                "set both MUSTER_PROFILE_SIGNING_CERT_FILE and MUSTER_PROFILE_SIGNING_KEY_FILE, or neither"
            )
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'muster.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"{scheme}://{host}:{self.port}"


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = [f"  MUSTER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()]
        raise ConfigurationError("Invalid configuration:\n" + "\n".join(lines)) from None
