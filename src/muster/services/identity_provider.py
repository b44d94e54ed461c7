"""The organisation's OpenID Connect identity provider, where users sign in to enroll their devices, and
Intune's "require multifactor authentication for enrollment" setting (seed-catalog-A §2.10 MFA-01..MFA-06).

The client secret is encrypted at rest and never leaves this module except to the token endpoint.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput
from muster.pki.secretbox import SecretBox
from muster.services.audit import AuditSink

SECRET_PURPOSE = "oidc-client-secret"
DEFAULT_SCOPES = ("openid", "profile", "email")
DEFAULT_UPN_CLAIM = "preferred_username"
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")  # RFC 6749 §3.3 scope-token
_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,256}$")
MAX_SECRET_LENGTH = 1024
MAX_LIST_LENGTH = 20


@dataclass(frozen=True)
class IdentityProviderConfig:
    """The sign-in settings; `issuer`/`client_id` are None while no identity provider is set up (local accounts
    only), and `require_mfa_for_enrollment` applies to every kind of sign-in."""

    issuer: str | None
    client_id: str | None
    client_secret_encrypted: bytes | None
    scopes: tuple[str, ...]
    user_principal_name_claim: str
    require_mfa_for_enrollment: bool
    mfa_acr_values: tuple[str, ...]  # `acr` values the provider asserts only after MFA
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class IdentityProviderChange:
    """A PATCH: fields left None stay as they are; an empty issuer, client id or secret removes it."""

    issuer: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: tuple[str, ...] | None = None
    user_principal_name_claim: str | None = None
    require_mfa_for_enrollment: bool | None = None
    mfa_acr_values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RelyingPartyCredentials:
    """What the sign-in flow needs of the configuration, secret decrypted (kept in memory only)."""

    config: IdentityProviderConfig
    issuer: str
    client_id: str
    client_secret: str | None


class IdentityProviderStore(Protocol):
    async def get(self, org_id: str) -> IdentityProviderConfig | None: ...

    async def save(self, org_id: str, config: IdentityProviderConfig) -> None: ...


class IdentityProviders:
    def __init__(self, *, store: IdentityProviderStore, secrets: SecretBox, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._secrets = secrets
        self._audit = audit
        self._clock = clock

    async def get(self, org_id: str) -> IdentityProviderConfig | None:
        return await self._store.get(org_id)

    async def credentials(self, org_id: str) -> RelyingPartyCredentials | None:
        """The relying party's credentials, or None when no identity provider is set up."""
        config = await self._store.get(org_id)
        if config is None or config.issuer is None or config.client_id is None:
            return None
        secret = config.client_secret_encrypted
        plain = self._secrets.decrypt(secret, purpose=SECRET_PURPOSE).decode() if secret else None
        return RelyingPartyCredentials(config, config.issuer, config.client_id, plain)

    async def update(self, org_id: str, change: IdentityProviderChange, *, actor: str) -> IdentityProviderConfig:
        current = await self._store.get(org_id)
        updated = _apply(current, change, self._encrypt, actor=actor, now=self._clock.now())
        if (updated.issuer is None) != (updated.client_id is None):
            raise InvalidInput("Set both issuer and clientId to use an identity provider (or clear both).")
        await self._store.save(org_id, updated)
        detail: dict[str, Any] = {
            name: value for name, value in vars(change).items() if value is not None and name != "client_secret"
        }
        if change.client_secret is not None:
            detail["clientSecret"] = "changed"  # the audit trail says that, never the value
        await self._audit.admin_event(
            actor=actor, activity="updateIdentityProviderSettings", target=updated.issuer, detail=detail
        )
        return updated

    def _encrypt(self, secret: str) -> bytes | None:
        return self._secrets.encrypt(secret.encode(), purpose=SECRET_PURPOSE) if secret else None


def _apply(
    current: IdentityProviderConfig | None,
    change: IdentityProviderChange,
    encrypt: Callable[[str], bytes | None],
    *,
    actor: str,
    now: datetime,
) -> IdentityProviderConfig:
    base = current or IdentityProviderConfig(
        issuer=None,
        client_id=None,
        client_secret_encrypted=None,
        scopes=DEFAULT_SCOPES,
        user_principal_name_claim=DEFAULT_UPN_CLAIM,
        require_mfa_for_enrollment=False,
        mfa_acr_values=(),
        updated_by=actor,
        updated_at=now,
    )
    fields: dict[str, Any] = {"updated_by": actor, "updated_at": now}
    if change.issuer is not None:
        fields["issuer"] = checked_issuer(change.issuer) if change.issuer else None
    if change.client_id is not None:
        if change.client_id and not _CLIENT_ID.fullmatch(change.client_id):
            raise InvalidInput("clientId must be 1 to 256 printable characters without spaces.")
        fields["client_id"] = change.client_id or None
    if change.client_secret is not None:
        if len(change.client_secret) > MAX_SECRET_LENGTH:
            raise InvalidInput(f"clientSecret is longer than {MAX_SECRET_LENGTH} characters.")
        fields["client_secret_encrypted"] = encrypt(change.client_secret)
    if change.scopes is not None:
        fields["scopes"] = _tokens("scopes", change.scopes)
        if "openid" not in fields["scopes"]:
            raise InvalidInput("scopes must include 'openid'.")
    if change.user_principal_name_claim is not None:
        if not _CLAIM_NAME.fullmatch(change.user_principal_name_claim):
            raise InvalidInput("userPrincipalNameClaim must be a claim name such as 'preferred_username' or 'upn'.")
        fields["user_principal_name_claim"] = change.user_principal_name_claim
    if change.require_mfa_for_enrollment is not None:
        fields["require_mfa_for_enrollment"] = change.require_mfa_for_enrollment
    if change.mfa_acr_values is not None:
        fields["mfa_acr_values"] = _tokens("multiFactorAuthenticationAcrValues", change.mfa_acr_values)
    return replace(base, **fields)


def checked_issuer(issuer: str) -> str:
    """An issuer identifier (OpenID Connect Discovery §2): an https URL without query or fragment; plain http
    only on a loopback address (a provider on the same machine, as in tests and demos)."""
    issuer = issuer.rstrip("/")
    parts = urlsplit(issuer)
    if len(issuer) > 500 or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise InvalidInput("issuer must be the provider's URL, e.g. https://login.example.com/tenant")
    if parts.scheme == "http" and _loopback(parts.hostname):
        return issuer
    if parts.scheme != "https":
        raise InvalidInput("issuer must be an https URL (http is accepted only for a provider on this machine)")
    return issuer


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tokens(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_LIST_LENGTH or not all(_SCOPE_TOKEN.fullmatch(value) for value in values):
        raise InvalidInput(f"{name}: at most {MAX_LIST_LENGTH} values, each without spaces, quotes or backslashes.")
    return tuple(dict.fromkeys(values))
